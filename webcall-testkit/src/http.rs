//! HTTP requests for tests, with reqwest: one request per call, to the
//! server under test or to chromedriver, in plain text or over TLS
//! ([`request_tls`], which trusts any certificate). Redirects are not
//! followed (tests check them) and no proxy is used.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::net::TcpStream;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, such as 200.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("the response body is not JSON: {}", self.text()))
    }
}

/// Sends one request to `addr` and reads the whole response.
///
/// `body`, when given, is sent as `application/json`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response> {
    send("http", addr, None, method, path, body).await
}

/// [`request`] with `host` in the `Host` header, for a server reached
/// through a forwarded port under the name its clients use.
pub async fn request_as(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response> {
    send("http", addr, Some(host), method, path, body).await
}

/// [`request`] over TLS, accepting whatever certificate the server shows:
/// for reaching a server under test, not for testing its certificate.
pub async fn request_tls(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response> {
    send("https", addr, None, method, path, body).await
}

/// [`request`] from synchronous code (a `Drop`, say), on a thread and
/// runtime of its own so that it also works inside an async context.
pub fn blocking_request(addr: SocketAddr, method: &str, path: &str) -> Result<Response> {
    let (method, path) = (method.to_owned(), path.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime for a blocking request")?
            .block_on(request(addr, &method, &path, None))
    })
    .join()
    .map_err(|_| anyhow!("the request thread panicked"))?
}

async fn send(
    scheme: &str,
    addr: SocketAddr,
    host: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .tls_danger_accept_invalid_certs(scheme == "https")
        .build()
        .context("building an HTTP client")?;
    let url = format!("{scheme}://{addr}{path}");
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("{method:?} is not an HTTP method"))?;
    let mut request = client.request(method.clone(), &url);
    if let Some(host) = host {
        request = request.header(reqwest::header::HOST, host);
    }
    request = match body {
        Some(body) => request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned()),
        None if method == reqwest::Method::POST || method == reqwest::Method::PUT => {
            request.header(reqwest::header::CONTENT_LENGTH, "0")
        }
        None => request,
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url} failed"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer to {method} {url}"))?
        .to_vec();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The certificate chain `addr` shows in a TLS handshake, leaf first.
/// `server_name` is sent as SNI (`None`: none, as for an address).
pub async fn peer_certificates(
    addr: SocketAddr,
    server_name: Option<&str>,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let handshake = async {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let name = match server_name {
            Some(name) => rustls::pki_types::ServerName::try_from(name.to_owned())?,
            None => rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
        };
        let stream = trusting_connector()?
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        let chain = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        anyhow::Ok(chain)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, handshake)
        .await
        .map_err(|_| anyhow!("TLS handshake with {addr} took longer than {REQUEST_TIMEOUT:?}"))?
}

/// A TLS connector that accepts any certificate.
fn trusting_connector() -> Result<tokio_rustls::TlsConnector> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A certificate verifier that believes every certificate (signatures are
/// still checked, so the handshake itself is real).
#[derive(Debug)]
struct AcceptAnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers one request with `answer` and hands back the
    /// request head it read.
    async fn one_shot(answer: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request head ends");
                head.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn the_host_header_can_name_another_host_and_redirects_are_not_followed() {
        let (addr, server) = one_shot(
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let response = request_as(addr, "call.example.org:8443", "GET", "/r/abc", None)
            .await
            .unwrap();
        assert_eq!(response.status, 308);
        assert_eq!(response.header("Location"), Some("https://x/"));
        let head = server.await.unwrap();
        assert!(head.starts_with("get /r/abc http/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\nhost: call.example.org:8443\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn json_bodies_go_out_and_chunked_answers_come_back_whole() {
        let (addr, server) = one_shot(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
        )
        .await;
        let response = request(addr, "POST", "/x", Some("{}")).await.unwrap();
        assert_eq!(response.json().unwrap()["a"], 1);
        let head = server.await.unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("content-length: 2"), "{head}");
    }
}
