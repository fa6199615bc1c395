//! One way for a test to wait: poll a condition until it holds, within a
//! generous bound, and fail with what was awaited (and the condition's
//! last error) when it never does.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};

/// How often a condition is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What a polled condition returns: `bool`, or `Result<bool>` when it can
/// fail along the way (the last failure is reported on timeout).
pub trait Condition {
    /// `Ok(true)` when the condition holds.
    fn holds(self) -> Result<bool>;
}

impl Condition for bool {
    fn holds(self) -> Result<bool> {
        Ok(self)
    }
}

impl Condition for Result<bool> {
    fn holds(self) -> Result<bool> {
        self
    }
}

/// Polls `check` every [`POLL_INTERVAL`] until it holds, for at most
/// `bound`; then an error saying `what` was awaited.
pub async fn wait_until<F, Fut>(what: &str, bound: Duration, check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Condition,
{
    poll_until(what, bound, POLL_INTERVAL, check).await
}

/// [`wait_until`], polling every `interval`.
pub(crate) async fn poll_until<F, Fut>(
    what: &str,
    bound: Duration,
    interval: Duration,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Condition,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let last = match check().await.holds() {
            Ok(true) => return Ok(()),
            Ok(false) => None,
            Err(e) => Some(e),
        };
        if tokio::time::Instant::now() >= deadline {
            match last {
                Some(e) => bail!("timed out after {bound:?} waiting until {what}: {e:#}"),
                None => bail!("timed out after {bound:?} waiting until {what}"),
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// [`wait_until`] for a condition that needs no `await`.
pub async fn wait_for(what: &str, bound: Duration, mut check: impl FnMut() -> bool) -> Result<()> {
    wait_until(what, bound, || std::future::ready(check())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_condition_holds() {
        let mut n = 0;
        wait_for("the third look", Duration::from_secs(30), || {
            n += 1;
            n == 3
        })
        .await
        .unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_condition_that_never_holds_fails_with_what_and_why() {
        let err = wait_until("never", Duration::from_secs(1), || async {
            Err::<bool, _>(anyhow::anyhow!("not yet"))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting until never: not yet"), "{err}");
        let err = wait_for("never", Duration::from_secs(1), || false)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("waiting until never"), "{err}");
    }
}
