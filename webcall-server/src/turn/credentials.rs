//! Short-lived TURN credentials in the TURN REST scheme that coturn's
//! `use-auth-secret` also accepts: the username is
//! `<unix-expiry>:<participant-id>` and the password is
//! `base64(HMAC-SHA1(secret, username))`. The server keeps no per-user
//! state: it recomputes the password from the username and checks the
//! expiry.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use md5::{Digest, Md5};
use ring::hmac;

use crate::error::{Error, Result};

/// The shared secret credentials are minted with. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// 256 bits from the operating system's CSPRNG, as URL-safe base64.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Config(format!("no randomness for the TURN secret: {e}")))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret as given (for an external TURN server that shares it).
    pub fn new(secret: impl Into<String>) -> Result<Self> {
        let secret = secret.into();
        if secret.len() < 16 {
            return Err(Error::Config(
                "the TURN secret must be at least 16 characters".into(),
            ));
        }
        Ok(Self(secret))
    }

    /// The secret kept in the file `path`: read when it exists, otherwise
    /// generated and written there (readable by its owner only), so that
    /// credentials handed out before a restart keep working after it.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::new(text.trim()).map_err(|e| {
                Error::Config(format!(
                    "{}: {e}; delete the file to have a new one made",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = Self::generate()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(path)
                    .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
                std::io::Write::write_all(&mut file, secret.0.as_bytes())
                    .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
                Ok(secret)
            }
            Err(e) => Err(Error::Config(format!(
                "cannot read the TURN secret in {}: {e}",
                path.display()
            ))),
        }
    }

    /// The secret itself, for writing into an external server's configuration.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, self.0.as_bytes())
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

/// One minted credential, as handed to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `<unix-expiry>:<participant-id>`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
}

/// The password for `username` under `secret`.
pub fn password_for(secret: &TurnSecret, username: &str) -> String {
    STANDARD.encode(hmac::sign(&secret.hmac_key(), username.as_bytes()).as_ref())
}

/// A credential for `participant` that works until `now + ttl`.
pub fn mint(secret: &TurnSecret, participant: &str, ttl: Duration, now: SystemTime) -> Credential {
    let expiry = now
        .checked_add(ttl)
        .unwrap_or(now)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let username = format!("{expiry}:{participant}");
    let password = password_for(secret, &username);
    Credential { username, password }
}

/// Why a username is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not `<digits>:<participant>`.
    Malformed,
    /// Its expiry has passed.
    Expired,
}

/// Checks a username's shape and expiry and returns its participant id.
pub fn check_username(username: &str, now: SystemTime) -> std::result::Result<&str, Refusal> {
    let (expiry, participant) = username.split_once(':').ok_or(Refusal::Malformed)?;
    if expiry.is_empty()
        || expiry.len() > 20
        || !expiry.bytes().all(|b| b.is_ascii_digit())
        || participant.is_empty()
        || participant.len() > 128
    {
        return Err(Refusal::Malformed);
    }
    let expiry: u64 = expiry.parse().map_err(|_| Refusal::Malformed)?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if expiry < now {
        return Err(Refusal::Expired);
    }
    Ok(participant)
}

/// The long-term key of RFC 5389 §15.4: `MD5(username:realm:password)`.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> Vec<u8> {
    let mut h = Md5::new();
    h.update(format!("{username}:{realm}:{password}").as_bytes());
    h.finalize().to_vec()
}

/// The TURN server's authentication: accepts unexpired TURN REST usernames
/// and returns the key their message integrity must match. A forged
/// password then fails the integrity check; an expired or malformed
/// username fails here.
#[derive(Debug, Clone)]
pub struct RestAuth {
    secret: TurnSecret,
    realm: String,
}

impl RestAuth {
    /// Checks credentials minted with `secret`, in `realm`.
    pub fn new(secret: TurnSecret, realm: impl Into<String>) -> Self {
        Self {
            secret,
            realm: realm.into(),
        }
    }

    /// The key for `username` at time `now`, or why it is refused.
    pub fn key(&self, username: &str, now: SystemTime) -> std::result::Result<Vec<u8>, Refusal> {
        check_username(username, now)?;
        let password = password_for(&self.secret, username);
        Ok(long_term_key(username, &self.realm, &password))
    }
}

impl turn::auth::AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> std::result::Result<Vec<u8>, turn::Error> {
        if realm != self.realm {
            return Err(turn::Error::Other(format!("unknown realm from {src_addr}")));
        }
        self.key(username, SystemTime::now())
            .map_err(|r| turn::Error::Other(format!("{r:?} TURN username from {src_addr}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turn::auth::AuthHandler as _;

    fn secret() -> TurnSecret {
        TurnSecret::new("a test secret of some length").unwrap()
    }

    #[test]
    fn minted_credentials_match_the_rest_scheme() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = mint(&secret(), "42", Duration::from_secs(3600), now);
        assert_eq!(c.username, "1700003600:42");
        // The same computation coturn does: base64(HMAC-SHA1(secret, username)).
        let key = hmac::Key::new(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            b"a test secret of some length",
        );
        let tag = hmac::sign(&key, b"1700003600:42");
        assert_eq!(c.password, STANDARD.encode(tag.as_ref()));
        assert_eq!(c.password.len(), 28, "20 bytes of HMAC-SHA1 in base64");
        let auth = RestAuth::new(secret(), "webcall");
        assert_eq!(
            auth.key(&c.username, now).unwrap(),
            long_term_key(&c.username, "webcall", &c.password)
        );
    }

    #[test]
    fn forged_expired_and_malformed_usernames_are_refused() {
        let now = SystemTime::now();
        let auth = RestAuth::new(secret(), "webcall");
        let addr: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let good = mint(&secret(), "7", Duration::from_secs(60), now);
        assert!(auth.auth_handle(&good.username, "webcall", addr).is_ok());
        assert!(auth.auth_handle(&good.username, "other", addr).is_err());

        // Forged: a password made with another secret yields another key.
        let other = TurnSecret::new("another secret, not the server's").unwrap();
        let forged = mint(&other, "7", Duration::from_secs(60), now);
        assert_eq!(forged.username, good.username);
        assert_ne!(
            auth.key(&forged.username, now).unwrap(),
            long_term_key(&forged.username, "webcall", &forged.password)
        );
        // Another participant's password does not fit this username.
        let theirs = mint(&secret(), "8", Duration::from_secs(60), now);
        assert_ne!(
            auth.key(&good.username, now).unwrap(),
            long_term_key(&good.username, "webcall", &theirs.password)
        );

        let expired = mint(&secret(), "7", Duration::ZERO, now - Duration::from_secs(5));
        assert_eq!(auth.key(&expired.username, now), Err(Refusal::Expired));
        assert!(
            auth.auth_handle(&expired.username, "webcall", addr)
                .is_err()
        );
        for bad in [
            "",
            "7",
            ":7",
            "123:",
            "12a:7",
            "-1:7",
            "99999999999999999999999:7",
        ] {
            assert_eq!(auth.key(bad, now), Err(Refusal::Malformed), "{bad:?}");
        }
        assert!(TurnSecret::new("short").is_err());
        assert_eq!(format!("{:?}", secret()), "TurnSecret(..)");
        assert_ne!(
            TurnSecret::generate().unwrap(),
            TurnSecret::generate().unwrap()
        );
    }
}

#[cfg(test)]
mod secret_file_tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_kept_and_read_back() {
        let dir = std::env::temp_dir().join(format!("webcall-turn-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("nested").join("turn-secret");
        let first = TurnSecret::load_or_create(&path).unwrap();
        let again = TurnSecret::load_or_create(&path).unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "short").unwrap();
        let err = TurnSecret::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("at least 16"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
