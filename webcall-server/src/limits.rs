//! Rate limits: a token bucket, and one bucket per client address for room
//! creation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            burst,
            rate: rate_per_second,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.try_take_n(1.0, now)
    }

    /// Takes `n` tokens if there are that many (a byte count, say).
    pub fn try_take_n(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// True when the bucket has refilled completely by `now`.
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// One bucket per client address: `per_minute` actions a minute, all of
/// them usable at once.
#[derive(Debug)]
pub struct PerAddressLimit {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

/// Addresses tracked before full buckets are forgotten.
const FORGET_ABOVE: usize = 10_000;

impl PerAddressLimit {
    /// `per_minute` = 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// True when `addr` may act now (and counts the action).
    pub fn check(&self, addr: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= FORGET_ABOVE {
            buckets.retain(|_, b| !b.is_full(now));
        }
        let rate = f64::from(self.per_minute) / 60.0;
        buckets
            .entry(addr)
            .or_insert_with(|| TokenBucket::new(rate, self.per_minute, now))
            .try_take(now)
    }

    /// Forgets addresses whose buckets are full again.
    pub fn forget_idle(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|_, b| !b.is_full(now));
    }
}

/// Seconds until a bucket of `per_minute` has a token again, for
/// `Retry-After`.
pub fn retry_after(per_minute: u32) -> Duration {
    Duration::from_secs((60 / u64::from(per_minute.max(1))).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(110)));
        assert!(!b.try_take(t0 + Duration::from_millis(120)));
    }

    #[test]
    fn addresses_have_their_own_buckets() {
        let t0 = Instant::now();
        let limit = PerAddressLimit::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limit.check(a, t0) && limit.check(a, t0));
        assert!(!limit.check(a, t0));
        assert!(limit.check(b, t0));
        assert!(limit.check(a, t0 + Duration::from_secs(30)));
        limit.forget_idle(t0 + Duration::from_secs(600));
        assert!(limit.buckets.lock().unwrap().is_empty());
        assert!(PerAddressLimit::new(0).check(a, t0));
    }
}
