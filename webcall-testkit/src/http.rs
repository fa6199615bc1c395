//! A minimal HTTP/1.1 client for loopback requests: one request per
//! connection (`Connection: close`), enough for a test to talk to the server
//! under test or to chromedriver, in plain text or over TLS
//! ([`request_tls`], which trusts any certificate).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    request_as(addr, &addr.to_string(), method, path, body).await
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
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr} for {method} {path}"))?;
        exchange(stream, host, method, path, body).await
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("{method} http://{host}{path} took longer than {REQUEST_TIMEOUT:?}"))?
}

/// [`request`] over TLS, accepting whatever certificate the server shows:
/// for reaching a server under test, not for testing its certificate.
pub async fn request_tls(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response> {
    let exchange = async {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr} for {method} {path}"))?;
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let stream = trusting_connector()?
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr} for {method} {path}"))?;
        exchange(stream, &addr.to_string(), method, path, body).await
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            anyhow!("{method} https://{addr}{path} took longer than {REQUEST_TIMEOUT:?}")
        })?
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

async fn exchange<S>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n");
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    } else if method == "POST" || method == "PUT" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if let Some(body) = body {
        stream.write_all(body.as_bytes()).await?;
    }
    // Some servers (chromedriver) keep the connection open despite
    // `Connection: close`: stop reading once the message is complete.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .with_context(|| format!("reading the answer to {method} {path}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if is_complete(&raw) {
            break;
        }
    }
    parse(&raw).with_context(|| format!("parsing the answer to {method} {path}"))
}

/// True when `raw` holds a whole response: headers plus `Content-Length`
/// bytes, or a chunked body up to its last chunk.
pub(crate) fn is_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    for line in head.split("\r\n") {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name == "content-length" {
                return value.parse::<usize>().is_ok_and(|len| body.len() >= len);
            }
            if name == "transfer-encoding" && value == "chunked" {
                return body.ends_with(b"0\r\n\r\n");
            }
        }
    }
    false
}

/// Parses a complete HTTP/1.1 response.
fn parse(raw: &[u8]) -> Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers in {} bytes", raw.len()))?;
    let head = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunk size"))?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            bail!("truncated chunk");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let plain =
            parse(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok").unwrap();
        assert_eq!(plain.status, 201);
        assert_eq!(plain.header("x-a"), Some("b"));
        assert_eq!(plain.text(), "ok");

        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(chunked.text(), "abcde");
    }

    #[test]
    fn knows_when_a_response_is_complete() {
        assert!(!is_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"
        ));
        assert!(is_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length:4\r\n\r\nabcd"
        ));
        assert!(!is_complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        ));
        assert!(is_complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ));
        assert!(!is_complete(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"nonsense").is_err());
        assert!(parse(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }
}
