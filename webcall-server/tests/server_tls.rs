//! HTTPS end to end: the real server with `--tls-self-signed`, with
//! certificate files replaced while it runs, and with ACME certificates
//! from a local pebble (Debian package `pebble`) that really validates the
//! TLS-ALPN-01 answer, with `pebble-challtestsrv` as its DNS. Clients check the
//! certificates as a browser would, trusting only what the test names.
//!
//! Loopback only:
//! `cargo test -p webcall-server --test server_tls --no-run`, then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline -p webcall-server --test server_tls'`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use webcall_server::Config;
use webcall_server::config::{AcmeSettings, TlsSource};
use webcall_server::tls::{RELOAD_CHECK, fingerprint, self_signed_paths};
use webcall_testkit::{TestServer, http, wait_until};

/// The longest any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(60);

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "webcall-server-tls-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_config(source: TlsSource, data_dir: &Path) -> Config {
    Config {
        tls: Some(source),
        data_dir: Some(data_dir.to_owned()),
        ..TestServer::test_config()
    }
}

/// An HTTPS client that trusts exactly the certificates in `pem` (no
/// public roots), as a browser that has accepted them.
fn client_trusting(pem: &[u8]) -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = reqwest::Certificate::from_pem_bundle(pem)?;
    Ok(reqwest::Client::builder()
        .tls_certs_only(certs)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()?)
}

/// The SHA-256 fingerprint of the leaf certificate `addr` serves.
async fn served_fingerprint(addr: SocketAddr, server_name: Option<&str>) -> Result<String> {
    let chain = http::peer_certificates(addr, server_name).await?;
    let leaf = chain.first().context("the server showed no certificate")?;
    Ok(fingerprint(leaf))
}

/// Sends `raw` bytes in plain text and reads the answer until the server
/// closes the connection.
async fn plain_exchange(addr: SocketAddr, raw: &str) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(raw.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .context("the server did not close the plain connection")??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_https_serves_https_links_hsts_and_redirects_plain_http() -> Result<()> {
    let data = TempDir::new("self-signed");
    let server = TestServer::start_with(tls_config(TlsSource::SelfSigned, data.path())).await?;
    let port = server.addr().port();
    let (cert_path, key_path) = self_signed_paths(data.path());
    let pem = std::fs::read(&cert_path).context("the self-signed certificate is stored")?;
    ensure!(key_path.exists(), "the key is stored beside it");
    let client = client_trusting(&pem)?;

    // The certificate covers localhost and 127.0.0.1; the API answers over
    // it, and every answer carries HSTS.
    for base in [
        format!("https://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
    ] {
        let health = client.get(format!("{base}/healthz")).send().await?;
        assert_eq!(health.status(), 200, "{base}");
        assert_eq!(
            health.headers()["strict-transport-security"],
            "max-age=31536000"
        );
    }
    let created = client
        .post(format!("https://127.0.0.1:{port}/api/rooms"))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let room: serde_json::Value = created.json().await?;
    let url = room["url"].as_str().context("a room link")?.to_owned();
    assert!(
        url.starts_with(&format!("https://127.0.0.1:{port}/r/")),
        "links are https: {url}"
    );
    let page = client.get(&url).send().await?;
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("strict-transport-security"));
    let csp = page.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(
        csp.contains(&format!("wss://127.0.0.1:{port}")),
        "the page may open its WebSocket over wss: {csp}"
    );

    // A client that trusts only the public roots refuses the certificate.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let stranger = reqwest::Client::builder()
        .tls_certs_only(Vec::new())
        .timeout(WAIT)
        .build()?;
    assert!(
        stranger
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err(),
        "an untrusted self-signed certificate is refused"
    );

    // Plain HTTP on the same port is redirected, never served.
    let plain = http::request(server.addr(), "GET", "/r/abc?x=1", None).await?;
    assert_eq!(plain.status, 308, "{}", plain.text());
    assert_eq!(
        plain.header("location"),
        Some(format!("https://{}/r/abc?x=1", server.addr()).as_str())
    );
    assert_eq!(plain.header("strict-transport-security"), None);
    let plain_api = http::request(server.addr(), "POST", "/api/rooms", None).await?;
    assert_eq!(plain_api.status, 308, "the API is not served in plain text");
    let plain_health = http::request(server.addr(), "GET", "/healthz", None).await?;
    assert_eq!(plain_health.status, 308);
    let no_host = plain_exchange(server.addr(), "GET / HTTP/1.0\r\n\r\n").await?;
    assert!(no_host.starts_with("HTTP/1.0 400"), "{no_host}");
    let stranger_host = plain_exchange(
        server.addr(),
        "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    )
    .await?;
    assert!(stranger_host.starts_with("HTTP/1.1 421"), "{stranger_host}");

    // The signaling WebSocket over wss: the page's own https origin passes
    // the origin check (the scheme comes from the listener), an http
    // origin for the same host does not.
    let token = room["token"].as_str().context("a token")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert?)?;
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    for (origin, accepted) in [
        (format!("https://127.0.0.1:{port}"), true),
        (format!("http://127.0.0.1:{port}"), false),
    ] {
        let mut request =
            format!("wss://127.0.0.1:{port}/ws/rooms/{token}").into_client_request()?;
        request.headers_mut().insert("origin", origin.parse()?);
        let result = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(tls.clone())),
        )
        .await;
        assert_eq!(result.is_ok(), accepted, "origin {origin}: {result:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_signed_certificate_is_the_same_after_a_restart() -> Result<()> {
    let data = TempDir::new("restart");
    let config = tls_config(TlsSource::SelfSigned, data.path());
    let first = TestServer::start_with(config.clone()).await?;
    let before = served_fingerprint(first.addr(), None).await?;
    let stored = std::fs::read(self_signed_paths(data.path()).0)?;
    drop(first);

    let second = TestServer::start_with(config).await?;
    let after = served_fingerprint(second.addr(), None).await?;
    assert_eq!(before, after, "the same certificate after a restart");
    assert_eq!(
        std::fs::read(self_signed_paths(data.path()).0)?,
        stored,
        "the stored certificate was not replaced"
    );
    // A client that trusted it the first time still does.
    let client = client_trusting(&stored)?;
    let health = client
        .get(format!(
            "https://localhost:{}/healthz",
            second.addr().port()
        ))
        .send()
        .await?;
    assert_eq!(health.status(), 200);
    Ok(())
}

/// A certificate and key for `name`, signed by itself: `(cert PEM, key PEM)`.
fn certificate_for(name: &str) -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()])?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn pem_fingerprint(pem: &str) -> Result<String> {
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())?;
    Ok(fingerprint(&cert))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_files_are_served_without_a_restart() -> Result<()> {
    let data = TempDir::new("files");
    let (cert_path, key_path) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    let (cert_a, key_a) = certificate_for("a.example.test")?;
    std::fs::write(&cert_path, &cert_a)?;
    std::fs::write(&key_path, &key_a)?;
    let server = TestServer::start_with(tls_config(
        TlsSource::Files {
            cert: cert_path.clone(),
            key: key_path.clone(),
        },
        data.path(),
    ))
    .await?;
    let addr = server.addr();
    assert_eq!(
        served_fingerprint(addr, None).await?,
        pem_fingerprint(&cert_a)?
    );

    // A renewal: both files replaced (the key first, as certbot's links
    // change together, but a reader may see either order).
    let (cert_b, key_b) = certificate_for("b.example.test")?;
    std::fs::write(&key_path, &key_b)?;
    std::fs::write(&cert_path, &cert_b)?;
    let want_b = pem_fingerprint(&cert_b)?;
    wait_until("the new certificate is served", WAIT, || async {
        Ok(served_fingerprint(addr, None).await? == want_b)
    })
    .await?;

    // A certificate whose key does not fit keeps the one in service.
    let (cert_c, key_c) = certificate_for("c.example.test")?;
    std::fs::write(&cert_path, &cert_c)?;
    let observe_until = tokio::time::Instant::now() + RELOAD_CHECK * 3;
    while tokio::time::Instant::now() < observe_until {
        assert_eq!(
            served_fingerprint(addr, None).await?,
            want_b,
            "a certificate without its key is not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its key arrives: now it is served.
    std::fs::write(&key_path, &key_c)?;
    let want_c = pem_fingerprint(&cert_c)?;
    wait_until("the completed pair is served", WAIT, || async {
        Ok(served_fingerprint(addr, None).await? == want_c)
    })
    .await?;
    Ok(())
}

/// A pebble ACME server on loopback that really validates TLS-ALPN-01
/// challenges, with `pebble-challtestsrv` as its DNS server (every name
/// resolves to 127.0.0.1); both stopped on drop.
struct Pebble {
    child: Child,
    dns: Child,
    directory: String,
    management: SocketAddr,
    /// Pebble's own HTTPS certificate (PEM), made by the test.
    listener_ca: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Pebble {
    /// Starts pebble and its DNS server and waits until the directory
    /// answers. Pebble validates TLS-ALPN-01 challenges by connecting to
    /// `tls_port` on the address its DNS gives for the domain (127.0.0.1),
    /// so the server under test must listen there.
    async fn start(dir: &Path, tls_port: u16) -> Result<Self> {
        let binary = std::env::var("WEBCALL_PEBBLE").unwrap_or_else(|_| "/usr/bin/pebble".into());
        let challtestsrv = std::env::var("WEBCALL_PEBBLE_CHALLTESTSRV")
            .unwrap_or_else(|_| "/usr/bin/pebble-challtestsrv".into());
        for program in [&binary, &challtestsrv] {
            ensure!(
                Path::new(program).exists(),
                "{program} is missing: install the Debian package pebble \
                 (or set WEBCALL_PEBBLE and WEBCALL_PEBBLE_CHALLTESTSRV)"
            );
        }
        // The DNS server: A queries get 127.0.0.1, AAAA queries nothing (the
        // server under test listens on IPv4 only). Its challenge responders
        // are off: the server under test answers the challenge itself.
        let dns_port = free_port()?;
        let dns_log = std::fs::File::create(dir.join("challtestsrv.log"))?;
        let dns = Command::new(&challtestsrv)
            .arg("-dns01")
            .arg(format!("127.0.0.1:{dns_port}"))
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .arg("-management")
            .arg(format!("127.0.0.1:{}", free_port()?))
            .stdin(Stdio::null())
            .stdout(dns_log.try_clone()?)
            .stderr(dns_log)
            .spawn()
            .with_context(|| format!("cannot start {challtestsrv}"))?;
        let (cert, key) = certificate_for("localhost")?;
        let (cert_path, key_path) = (dir.join("pebble-cert.pem"), dir.join("pebble-key.pem"));
        std::fs::write(&cert_path, &cert)?;
        std::fs::write(&key_path, &key)?;
        let (api, management) = (free_port()?, free_port()?);
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{api}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": cert_path,
                "privateKey": key_path,
                "httpPort": free_port()?,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let log = std::fs::File::create(dir.join("pebble.log"))?;
        let child = Command::new(&binary)
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        let pebble = Self {
            child,
            dns,
            directory: format!("https://127.0.0.1:{api}/dir"),
            management: SocketAddr::from(([127, 0, 0, 1], management)),
            listener_ca: cert_path,
        };
        let client = client_trusting(cert.as_bytes())?;
        wait_until("pebble's directory answers", WAIT, || {
            let client = client.clone();
            let url = pebble.directory.clone();
            async move { Ok(client.get(url).send().await?.status().is_success()) }
        })
        .await
        .with_context(|| {
            let log = std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default();
            format!("pebble's log:\n{log}")
        })?;
        Ok(pebble)
    }

    /// The root that signs the certificates pebble issues (PEM).
    async fn issuing_root(&self) -> Result<Vec<u8>> {
        let client = client_trusting(&std::fs::read(&self.listener_ca)?)?;
        let answer = client
            .get(format!("https://{}/roots/0", self.management))
            .send()
            .await?;
        ensure!(answer.status().is_success(), "roots/0: {}", answer.status());
        Ok(answer.bytes().await?.to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_obtains_a_certificate_from_pebble_and_keeps_it() -> Result<()> {
    const DOMAIN: &str = "call.example.test";
    let data = TempDir::new("acme");
    // Pebble connects to this port to check the TLS-ALPN-01 answer, so
    // the server's address is chosen before pebble starts.
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let pebble = Pebble::start(data.path(), addr.port()).await?;
    let config = tls_config(
        TlsSource::Acme(AcmeSettings {
            domains: vec![DOMAIN.to_owned()],
            email: Some("ops@example.test".to_owned()),
            directory: pebble.directory.clone(),
            directory_ca: Some(pebble.listener_ca.clone()),
        }),
        data.path().join("webcall").as_path(),
    );
    // Starting waits until a handshake succeeds, that is until the
    // certificate has arrived.
    let server = TestServer::start_at(addr, config.clone())
        .await
        .with_context(|| {
            let log = std::fs::read_to_string(data.path().join("pebble.log")).unwrap_or_default();
            format!("pebble's log:\n{log}")
        })?;
    let root = pebble.issuing_root().await?;

    // A client that trusts pebble's root (and nothing else) accepts the
    // server as the domain.
    let check = |addr: SocketAddr| {
        let root = root.clone();
        async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .tls_certs_only(reqwest::Certificate::from_pem_bundle(&root)?)
                .resolve(DOMAIN, addr)
                .timeout(WAIT)
                .build()?;
            let created = client
                .post(format!("https://{DOMAIN}:{}/api/rooms", addr.port()))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            ensure!(created.status() == 201, "{}", created.status());
            let room: serde_json::Value = created.json().await?;
            let url = room["url"].as_str().unwrap_or_default().to_owned();
            ensure!(
                url.starts_with(&format!("https://{DOMAIN}:{}/r/", addr.port())),
                "links name the domain over https: {url}"
            );
            anyhow::Ok(true)
        }
    };
    wait_until(
        "the server's ACME certificate is trusted through pebble's root",
        WAIT,
        || check(server.addr()),
    )
    .await?;
    drop(server);

    // Restarted without the CA: the cached certificate is served at once.
    drop(pebble);
    let again = TestServer::start_with(config).await?;
    wait_until(
        "the cached certificate is served after a restart",
        WAIT,
        || check(again.addr()),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_finishes_is_closed_within_the_request_timeout() -> Result<()> {
    let data = TempDir::new("slow");
    let server = TestServer::start_with(Config {
        request_timeout: Duration::from_secs(1),
        ..tls_config(TlsSource::SelfSigned, data.path())
    })
    .await?;
    for opening in [&b""[..], &[0x16, 0x03, 0x01][..], b"GET / HT"] {
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await?;
        stream.write_all(opening).await?;
        let started = tokio::time::Instant::now();
        let mut rest = Vec::new();
        // The server closes: end of stream, or a reset.
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
        ensure!(closed.is_ok(), "still open after {WAIT:?} with {opening:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{opening:?} closed after {:?}",
            started.elapsed()
        );
    }
    // The server still answers.
    assert_eq!(server.request("GET", "/healthz", None).await?.status, 200);
    Ok(())
}
