//! Identifiers: room tokens and resume secrets (unguessable, from the
//! operating system's CSPRNG) and participant ids (random, not secret).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Length of a 128-bit secret written as unpadded URL-safe base64.
const SECRET_CHARS: usize = 22;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf)
}

fn is_secret(s: &str) -> bool {
    s.len() == SECRET_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD.decode(s).is_ok_and(|b| b.len() == 16)
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A fresh value: 128 bits from the operating system's CSPRNG.
            pub fn generate() -> Result<Self> {
                Ok(Self(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?)))
            }

            /// The value as written in URLs and messages.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                if is_secret(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(Error::InvalidToken { what: $what })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(t: $name) -> String {
                t.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

secret_type!(
    /// A room's name in its link: 128 random bits, 22 URL-safe characters.
    RoomToken,
    "room token"
);

impl fmt::Debug for RoomToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Enough to tell rooms apart in logs without leaking the link.
        write!(f, "RoomToken({}…)", &self.0[..6])
    }
}

secret_type!(
    /// The secret that lets a participant take their seat back from a new
    /// connection, as after a page reload.
    ResumeToken,
    "resume token"
);

impl fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeToken(…)")
    }
}

/// A participant's id within a room: 64 random bits as 16 hex digits.
/// Shown to the other participant; not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParticipantId(String);

impl ParticipantId {
    /// A fresh random id.
    pub fn generate() -> Result<Self> {
        let bytes = random_bytes::<8>()?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The id as written in messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ParticipantId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidToken {
                what: "participant id",
            })
        }
    }
}

impl TryFrom<String> for ParticipantId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ParticipantId> for String {
    fn from(t: ParticipantId) -> String {
        t.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a [`crate::room::Room`] draws fresh participant ids and resume
/// secrets from: the operating system's CSPRNG ([`IdSource::os`], the
/// default), or, in tests that need the same ids on every run, a counter
/// ([`IdSource::sequential`]).
///
/// Two sources compare equal: a room's state does not include where its
/// next ids come from.
#[derive(Clone)]
pub struct IdSource(Arc<FillBytes>);

/// Fills a buffer with fresh bytes.
type FillBytes = dyn Fn(&mut [u8]) -> Result<()> + Send + Sync;

impl IdSource {
    /// The operating system's CSPRNG: unguessable secrets.
    pub fn os() -> Self {
        Self(Arc::new(|buf: &mut [u8]| {
            getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
        }))
    }

    /// Predictable values for tests: each id or secret drawn is the next
    /// number from `first` on, written big-endian at the end of its bytes.
    /// Never use it for real rooms: anyone could guess the secrets.
    pub fn sequential(first: u64) -> Self {
        let next = AtomicU64::new(first);
        Self(Arc::new(move |buf: &mut [u8]| {
            let n = next.fetch_add(1, Ordering::Relaxed).to_be_bytes();
            buf.fill(0);
            let tail = buf.len().saturating_sub(n.len());
            let skip = n.len().saturating_sub(buf.len());
            buf[tail..].copy_from_slice(&n[skip..]);
            Ok(())
        }))
    }

    /// A fresh participant id from this source.
    pub fn participant_id(&self) -> Result<ParticipantId> {
        let mut bytes = [0u8; 8];
        (self.0)(&mut bytes)?;
        Ok(ParticipantId(
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    /// A fresh resume secret from this source.
    pub fn resume_token(&self) -> Result<ResumeToken> {
        let mut bytes = [0u8; 16];
        (self.0)(&mut bytes)?;
        Ok(ResumeToken(URL_SAFE_NO_PAD.encode(bytes)))
    }
}

impl Default for IdSource {
    fn default() -> Self {
        Self::os()
    }
}

impl fmt::Debug for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdSource(..)")
    }
}

impl PartialEq for IdSource {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for IdSource {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn room_tokens_are_128_bit_url_safe_and_distinct() {
        let tokens: HashSet<_> = (0..1000).map(|_| RoomToken::generate().unwrap()).collect();
        assert_eq!(tokens.len(), 1000);
        for t in &tokens {
            assert_eq!(t.as_str().len(), 22);
            assert_eq!(URL_SAFE_NO_PAD.decode(t.as_str()).unwrap().len(), 16);
            assert_eq!(t.as_str().parse::<RoomToken>().unwrap(), *t);
        }
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "abc",
            "../../etc/passwd",
            "q3V1n0cF2mXb7eYtK9aJ1w=",
            "q3V1n0cF2mXb7eYtK9aJ1!",
            "q3V1n0cF2mXb7eYtK9aJ1wq",
        ] {
            assert!(bad.parse::<RoomToken>().is_err(), "{bad}");
        }
        assert!("q3V1n0cF2mXb7eYtK9aJ1w".parse::<RoomToken>().is_ok());
    }

    #[test]
    fn debug_does_not_print_whole_secrets() {
        let t = RoomToken::generate().unwrap();
        assert!(!format!("{t:?}").contains(t.as_str()));
        let r = ResumeToken::generate().unwrap();
        assert!(!format!("{r:?}").contains(r.as_str()));
    }

    #[test]
    fn participant_ids_are_hex() {
        let p = ParticipantId::generate().unwrap();
        assert_eq!(p.as_str().len(), 16);
        assert_eq!(p.as_str().parse::<ParticipantId>().unwrap(), p);
        assert!("XYZ".parse::<ParticipantId>().is_err());
    }

    #[test]
    fn a_sequential_source_counts_and_yields_valid_values() {
        let ids = IdSource::sequential(1);
        assert_eq!(ids.participant_id().unwrap().as_str(), "0000000000000001");
        let r = ids.resume_token().unwrap();
        assert_eq!(r.as_str().parse::<ResumeToken>().unwrap(), r);
        assert_eq!(ids.participant_id().unwrap().as_str(), "0000000000000003");
        let os = IdSource::os();
        assert_ne!(os.participant_id().unwrap(), os.participant_id().unwrap());
    }
}
