//! HTTPS: where the server's certificate comes from, and the rustls
//! configuration that serves it.
//!
//! A [`Tls`] owns one certificate source ([`TlsSource`]):
//!
//! - **PEM files** (`--tls-cert`, `--tls-key`), read again when either file
//!   changes (checked every [`RELOAD_CHECK`]), so a certbot renewal needs
//!   no restart. A new file that does not load (half written, a key that
//!   does not fit) keeps the previous certificate in service, and the log
//!   says why.
//! - **Self-signed** (`--tls-self-signed`): a certificate for `localhost`,
//!   the host name and every local address, made once and kept in the data
//!   directory so that its fingerprint stays the same across restarts.
//! - **ACME** (`--acme-domain`): certificates from Let's Encrypt (or any
//!   ACME CA) through the TLS-ALPN-01 challenge on the HTTPS port itself,
//!   by the `rustls-acme` crate, cached in the data directory and renewed
//!   before they expire.
//!
//! Whatever the source, [`Tls::resolver`] always hands out the current
//! certificate and [`Tls::server_config`] is the rustls configuration built
//! around it. Another listener of this process (TURN over TLS, `turns:`)
//! serves the same certificate, renewals included, by starting the
//! [`Tls`] once, passing it to [`crate::run_with_tls`] and taking
//! `tls.server_config()` (or, for its own ALPN list,
//! `let mut c = (*tls.server_config()).clone(); c.alpn_protocols = ...`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_util::task::AbortOnDropHandle;

use crate::error::{Error, Result};

/// The ALPN name of HTTP/1.1, the protocol the server speaks over TLS.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// The ALPN name of the ACME TLS-ALPN-01 challenge (RFC 8737): a
/// connection that negotiates it is the CA checking this server, and is
/// closed after the handshake.
pub const ALPN_ACME_TLS: &[u8] = b"acme-tls/1";
/// Let's Encrypt's production directory, the default ACME directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// How often certificate files are checked for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// How long a self-signed certificate is valid. Apple's platforms refuse
/// TLS server certificates valid for more than 825 days, even self-signed
/// ones a user has accepted.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(825 * 24 * 3600);
/// A self-signed certificate this close to its end is made again at start.
const SELF_SIGNED_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsSource {
    /// PEM files: the certificate chain (leaf first) and its private key,
    /// read again when either changes.
    Files {
        /// The certificate chain, such as certbot's `fullchain.pem`.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1), such as `privkey.pem`.
        key: PathBuf,
    },
    /// A certificate made here for `localhost`, the host name and every
    /// local address, kept in the data directory.
    SelfSigned,
    /// Certificates from an ACME CA through TLS-ALPN-01 on the HTTPS port.
    Acme(AcmeSettings),
}

/// What the ACME client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The names to obtain one certificate for (at least one).
    pub domains: Vec<String>,
    /// A contact address for the account (expiry notices), without `mailto:`.
    pub email: Option<String>,
    /// The ACME directory URL; [`LETS_ENCRYPT`] by default.
    pub directory: String,
    /// A PEM file of CA certificates to trust for the directory's own HTTPS
    /// instead of the public web roots (a private or test CA such as
    /// pebble).
    pub directory_ca: Option<PathBuf>,
}

impl AcmeSettings {
    /// Settings for `domains` from Let's Encrypt, without a contact.
    pub fn new(domains: Vec<String>) -> Self {
        Self {
            domains,
            email: None,
            directory: LETS_ENCRYPT.to_owned(),
            directory_ca: None,
        }
    }
}

/// The two files of the self-signed certificate in `data_dir`:
/// `(certificate, private key)`.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (
        dir.join("self-signed-cert.pem"),
        dir.join("self-signed-key.pem"),
    )
}

/// The SHA-256 fingerprint of a certificate (DER), as browsers show it:
/// upper-case hex pairs separated by colons.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The server's certificate source, running: clone it freely; the reload
/// or ACME task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    what: String,
    resolver: Arc<dyn ResolvesServerCert>,
    /// The certificate in service, where this process holds it (files and
    /// self-signed; ACME keeps its own).
    current: Option<Arc<Current>>,
    server_config: Arc<ServerConfig>,
    _task: Option<AbortOnDropHandle<()>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("source", &self.inner.what)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads, makes or starts obtaining the certificate `source` names
    /// (`data_dir` keeps the self-signed certificate and the ACME account
    /// and certificates), and starts the task that keeps it current.
    ///
    /// Fails when certificate files do not load or the data directory is
    /// not writable. ACME does not wait for the first certificate:
    /// handshakes fail until it arrives (the log says when).
    pub async fn start(source: &TlsSource, data_dir: &Path) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (what, resolver, current, task, acme): (
            String,
            Arc<dyn ResolvesServerCert>,
            _,
            _,
            bool,
        ) = match source {
            TlsSource::Files { cert, key } => {
                let stamps = (stamp(cert), stamp(key));
                let loaded = load_pem(cert, key, &provider).map_err(Error::Tls)?;
                warn_if_expired(&loaded, cert);
                let current = Arc::new(Current::new(loaded));
                let task = tokio::spawn(watch_files(
                    Arc::downgrade(&current),
                    cert.clone(),
                    key.clone(),
                    stamps,
                    provider.clone(),
                ));
                (
                    format!("{} and {}", cert.display(), key.display()),
                    current.clone(),
                    Some(current),
                    Some(AbortOnDropHandle::new(task)),
                    false,
                )
            }
            TlsSource::SelfSigned => {
                let loaded = self_signed(data_dir, &provider)?;
                let current = Arc::new(Current::new(loaded));
                (
                    format!(
                        "a self-signed certificate in {}",
                        data_dir.join("tls").display()
                    ),
                    current.clone(),
                    Some(current),
                    None,
                    false,
                )
            }
            TlsSource::Acme(settings) => {
                let (resolver, task) = acme(settings, data_dir, provider.clone())?;
                (
                    format!(
                        "ACME certificates for {} from {}",
                        settings.domains.join(", "),
                        settings.directory
                    ),
                    resolver,
                    None,
                    Some(task),
                    true,
                )
            }
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("no TLS versions in common with ring: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        if acme {
            config.alpn_protocols.push(ALPN_ACME_TLS.to_vec());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                what,
                resolver,
                current,
                server_config: Arc::new(config),
                _task: task,
            }),
        })
    }

    /// The rustls server configuration: the current certificate, ALPN
    /// `http/1.1` (and `acme-tls/1` with ACME), no client certificates.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.server_config.clone()
    }

    /// The certificate resolver behind [`Tls::server_config`], always
    /// answering with the certificate in service.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        self.inner.resolver.clone()
    }

    /// The leaf certificate in service (`None` with ACME, whose client
    /// keeps it).
    pub fn certificate(&self) -> Option<CertificateDer<'static>> {
        let current = self.inner.current.as_ref()?.get();
        current.cert.first().cloned()
    }

    /// The SHA-256 fingerprint of [`Tls::certificate`].
    pub fn fingerprint(&self) -> Option<String> {
        self.certificate().map(|c| fingerprint(&c))
    }

    /// Where the certificate comes from, for the log.
    pub fn describe(&self) -> &str {
        &self.inner.what
    }
}

/// The certificate in service, replaced on reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn new(key: Arc<CertifiedKey>) -> Self {
        Self(RwLock::new(key))
    }

    fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Reads a PEM certificate chain and its private key, and checks that they
/// belong together. The error says which file is wrong and how.
fn load_pem(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{} holds no PEM private key: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        format!(
            "the key in {} does not serve the certificate in {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// When the leaf certificate stops being valid.
fn not_after(key: &CertifiedKey) -> Option<SystemTime> {
    let leaf = key.cert.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let secs = u64::try_from(parsed.validity().not_after.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn warn_if_expired(key: &CertifiedKey, path: &Path) {
    if not_after(key).is_some_and(|end| end < SystemTime::now()) {
        tracing::warn!(
            "the certificate in {} has expired; browsers will refuse it",
            path.display()
        );
    }
}

/// What a file looked like: modification time and length (`None`: not
/// there). Symbolic links are followed, as certbot's `live/` files are.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the certificate when either file changes, until the [`Tls`]
/// is dropped. A change that does not load is logged once and the
/// previous certificate stays in service.
async fn watch_files(
    current: Weak<Current>,
    cert: PathBuf,
    key: PathBuf,
    mut seen: (Stamp, Stamp),
    provider: Arc<CryptoProvider>,
) {
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(current) = current.upgrade() else {
            return;
        };
        let now = (stamp(&cert), stamp(&key));
        if now == seen {
            continue;
        }
        seen = now;
        match load_pem(&cert, &key, &provider) {
            Ok(loaded) => {
                warn_if_expired(&loaded, &cert);
                let print = loaded.cert.first().map(|c| fingerprint(c));
                current.set(loaded);
                tracing::info!(
                    fingerprint = print.as_deref().unwrap_or("?"),
                    "certificate reloaded from {}",
                    cert.display()
                );
            }
            Err(e) => tracing::warn!(
                "certificate files changed but the previous certificate stays in service: {e}"
            ),
        }
    }
}

/// Creates `dir` (and its parents) readable by this user only.
fn private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        Error::Tls(format!(
            "cannot create {}: {e}; choose a writable directory with --data-dir",
            dir.display()
        ))
    })
}

/// Writes `contents` to `path` through a temporary file and a rename, so a
/// reader never sees half a file; `private` files are readable by this
/// user only.
fn write_atomic(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// The names a self-signed certificate covers: `localhost`, the host name
/// (also with `.local`, as mDNS announces it) and every local address.
pub fn local_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = gethostname::gethostname()
        .to_str()
        .map(str::to_ascii_lowercase)
        .filter(|h| !h.is_empty() && !h.contains(':') && crate::request::is_plausible_host(h))
    {
        names.push(format!("{host}.local"));
        names.push(host);
    }
    for interface in if_addrs::get_if_addrs().unwrap_or_default() {
        names.push(interface.ip().to_string());
    }
    names.push("127.0.0.1".to_owned());
    names.push("::1".to_owned());
    let mut seen = Vec::new();
    names.retain(|n| {
        let new = !seen.contains(n);
        if new {
            seen.push(n.clone());
        }
        new
    });
    names
}

/// The stored self-signed certificate, or a new one when there is none
/// (or it cannot be read, or ends within a month).
fn self_signed(data_dir: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
    let (cert_path, key_path) = self_signed_paths(data_dir);
    if cert_path.exists() || key_path.exists() {
        match load_pem(&cert_path, &key_path, provider) {
            Ok(loaded)
                if not_after(&loaded)
                    .is_some_and(|end| end > SystemTime::now() + SELF_SIGNED_RENEW_BEFORE) =>
            {
                return Ok(loaded);
            }
            Ok(_) => {
                tracing::info!("the self-signed certificate ends within a month; making a new one")
            }
            Err(e) => tracing::warn!(
                "cannot use the stored self-signed certificate ({e}); making a new one"
            ),
        }
    }
    let names = local_names();
    let (cert_pem, key_pem) = make_self_signed(&names)?;
    if let Some(dir) = cert_path.parent() {
        private_dir(dir)?;
    }
    let written = write_atomic(&key_path, key_pem.as_bytes(), true)
        .and_then(|()| write_atomic(&cert_path, cert_pem.as_bytes(), false));
    written.map_err(|e| {
        Error::Tls(format!(
            "cannot store the self-signed certificate in {}: {e}; choose a writable directory with --data-dir",
            data_dir.display()
        ))
    })?;
    tracing::info!(
        names = names.join(", "),
        "made a self-signed certificate in {}",
        cert_path.display()
    );
    load_pem(&cert_path, &key_path, provider).map_err(Error::Tls)
}

/// A new self-signed certificate for `names` (host names and addresses),
/// as `(certificate PEM, private key PEM)`.
fn make_self_signed(names: &[String]) -> Result<(String, String)> {
    let bad = |e: rcgen::Error| Error::Tls(format!("cannot make a self-signed certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(bad)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "webcall (self-signed)");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let at = |secs: u64| {
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
            .map_err(|e| Error::Tls(format!("the clock is out of range: {e}")))
    };
    // A day of slack for clocks behind this one.
    params.not_before = at(now.saturating_sub(24 * 3600))?;
    params.not_after = at(now + SELF_SIGNED_VALIDITY.as_secs())?;
    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let cert = params.self_signed(&key).map_err(bad)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Starts the ACME client: its resolver (the certificate once obtained,
/// and the challenge certificate while the CA validates) and the task that
/// orders and renews.
fn acme(
    settings: &AcmeSettings,
    data_dir: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<(Arc<dyn ResolvesServerCert>, AbortOnDropHandle<()>)> {
    if settings.domains.is_empty() {
        return Err(Error::Tls("ACME needs at least one domain".into()));
    }
    let cache_dir = data_dir.join("acme");
    private_dir(&cache_dir)?;
    let mut config =
        rustls_acme::AcmeConfig::new_with_provider(&settings.domains, provider.clone());
    if let Some(ca) = &settings.directory_ca {
        let unreadable = |e: &dyn fmt::Display| {
            Error::Tls(format!(
                "cannot read the ACME directory's CA from {}: {e}",
                ca.display()
            ))
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| unreadable(&e))? {
            roots
                .add(cert.map_err(|e| unreadable(&e))?)
                .map_err(|e| unreadable(&e))?;
        }
        if roots.is_empty() {
            return Err(unreadable(&"no certificate in the file"));
        }
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("no TLS versions in common with ring: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config = config.client_tls_config(Arc::new(client));
    }
    let mut state = config
        .contact(settings.email.iter().map(|e| format!("mailto:{e}")))
        .directory(&settings.directory)
        .cache(rustls_acme::caches::DirCache::new(cache_dir))
        .state();
    let resolver: Arc<dyn ResolvesServerCert> = state.resolver();
    let domains = settings.domains.join(", ");
    let task = tokio::spawn(async move {
        while let Some(event) = state.next().await {
            match event {
                Ok(rustls_acme::EventOk::DeployedNewCert) => {
                    tracing::info!("ACME: obtained a new certificate for {domains}");
                }
                Ok(rustls_acme::EventOk::DeployedCachedCert) => {
                    tracing::info!("ACME: serving the cached certificate for {domains}");
                }
                Ok(other) => tracing::debug!("ACME: {other:?}"),
                Err(e) => tracing::warn!("ACME: {e}; trying again later"),
            }
        }
    });
    Ok((resolver, AbortOnDropHandle::new(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "webcall-tls-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn self_signed_is_made_once_and_kept() {
        let dir = temp_dir("keep");
        let first = self_signed(&dir, &provider()).unwrap();
        let second = self_signed(&dir, &provider()).unwrap();
        assert_eq!(
            first.cert[0], second.cert[0],
            "the stored certificate is reused"
        );
        let (_, key) = self_signed_paths(&dir);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
        }
        let end = not_after(&first).unwrap();
        let days = end.duration_since(SystemTime::now()).unwrap().as_secs() / 86400;
        assert!((800..=825).contains(&days), "{days} days");
        // A damaged file is replaced by a new certificate.
        std::fs::write(&key, "garbage").unwrap();
        let third = self_signed(&dir, &provider()).unwrap();
        assert_ne!(first.cert[0], third.cert[0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_that_does_not_fit_is_refused_with_the_file_names() {
        let dir = temp_dir("mismatch");
        let (cert_a, _) = make_self_signed(&["a.example".into()]).unwrap();
        let (_, key_b) = make_self_signed(&["b.example".into()]).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, cert_a).unwrap();
        std::fs::write(&k, key_b).unwrap();
        let err = load_pem(&c, &k, &provider()).unwrap_err();
        assert!(err.contains("k.pem") && err.contains("c.pem"), "{err}");
        std::fs::write(&c, "not pem").unwrap();
        let err = load_pem(&c, &k, &provider()).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fingerprints_look_like_browsers_show_them() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("BA:78:16:BF"), "{f}");
    }

    #[test]
    fn local_names_cover_localhost_and_loopback() {
        let names = local_names();
        for n in ["localhost", "127.0.0.1", "::1"] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
    }
}
