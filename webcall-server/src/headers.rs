//! Security headers on every answer, set with tower-http's header layers: a
//! strict Content-Security-Policy (no inline code; WebSockets only to this
//! host), no sniffing, no referrer, camera and microphone for this origin
//! only, no framing; over the server's own TLS, HSTS (browsers then never
//! try plain HTTP for a year).
//!
//! Only the CSP depends on the request (its `connect-src` names the host
//! the page was loaded from), so it alone is set by a response mapper that
//! sees the request's `Host`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::request::is_plausible_host;

/// The fixed headers, each as its own layer.
const FIXED: [(HeaderName, &str); 6] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(self), microphone=(self)",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
];

/// HSTS for a year, on answers over the server's own TLS.
pub(crate) fn hsts() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    )
}

/// `router` with the security headers on every answer (HSTS aside: see
/// [`hsts`]). Pages may also open WebSockets to the public URL's
/// `host[:port]`.
pub(crate) fn security_headers<S>(router: Router<S>, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let public_host = config
        .public_base()
        .and_then(|base| url::Url::parse(base).ok())
        .map(|url| url[url::Position::BeforeHost..url::Position::BeforePath].to_owned());
    let router = router.layer(middleware::map_response_with_state(
        public_host,
        content_security_policy,
    ));
    FIXED.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

/// Sets the CSP, whose `connect-src` allows WebSockets to the request's
/// host and to the public host.
async fn content_security_policy(
    State(public_host): State<Option<String>>,
    request_headers: HeaderMap,
    mut response: Response,
) -> Response {
    let host = request_headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plausible_host(h));
    let mut connect = String::from("'self'");
    for h in host.iter().copied().chain(public_host.as_deref()) {
        connect.push_str(&format!(" ws://{h} wss://{h}"));
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob: mediastream:; connect-src {connect}; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(csp) = HeaderValue::try_from(csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}
