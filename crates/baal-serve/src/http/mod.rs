//! The HTTP side: the JSON API, the labelling page, and Label Studio's ML-backend protocol,
//! all on one axum router behind one gate (`gate`: the token before the body, body limits
//! and timeouts, a log line per request), served by an accept loop with connection limits
//! ([`Server`], [`ServerConfig`]). Store calls run on the async workers directly: each holds the
//! state's lock for in-memory work and at most one journal sync, which costs less than the
//! two thread hops of tokio's blocking pool (measured: the serve bench's p99 went from 36.6 to
//! 18.9 ms).

mod api;
mod gate;
mod label_studio;
mod server;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub use gate::{API_BODY_LIMIT, LABEL_STUDIO_BODY_LIMIT, WEBHOOK_BODY_LIMIT};
pub use server::{Server, ServerConfig};

use crate::error::ServeError;
use crate::service::Service;

/// The service's routes with the default limits: `/` (the page), `/api/...` (the labelling
/// API) and Label Studio's `/health`, `/setup`, `/predict`, `/webhook`, `/train`.
pub fn router(service: Arc<Service>) -> Router {
    router_with(service, &ServerConfig::default())
}

/// The routes behind the gate (the token before the body, body limits and timeout, a log
/// line per request); unknown routes and methods answer JSON errors.
pub(crate) fn router_with(service: Arc<Service>, config: &ServerConfig) -> Router {
    let gate = Arc::new(gate::Gate {
        service: Arc::clone(&service),
        body_timeout: config.body_timeout,
    });
    Router::new()
        .merge(api::routes())
        .merge(label_studio::routes())
        .fallback(|| async { ServeError::NoRoute.into_response() })
        .method_not_allowed_fallback(|| async { ServeError::MethodNotAllowed.into_response() })
        .with_state(service)
        .layer(axum::middleware::from_fn_with_state(gate, gate::gate))
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
        (status, axum::Json(body)).into_response()
    }
}

/// Decodes standard base64 (what HTTP basic authentication uses).
fn decode_base64(text: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut n_bits = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push(((bits >> n_bits) & 0xff) as u8);
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a JSON body (read whole by the gate), or says what is wrong with it.
fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ServeError> {
    let body = body.map_err(|rejection| {
        ServeError::BadRequest(format!("cannot read the body: {rejection}"))
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ServeError::BadRequest(format!("malformed JSON body: {e}")))
}

/// A number written as a plain decimal: digits only, no sign, no leading zero (but `0`).
/// `"+4"`, `"04"` and `" 4"` are not numbers here.
pub(crate) fn plain_index(text: &str) -> Option<usize> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// Runs `f` on the service, on the async worker itself: a store call holds the lock for
/// in-memory work and at most one journal sync (under a millisecond here), cheaper than two
/// thread hops through tokio's blocking pool, which made the latency's tail.
async fn call<T: Send + 'static>(
    service: &Arc<Service>,
    f: impl FnOnce(&Service) -> Result<T, ServeError> + Send + 'static,
) -> Result<T, ServeError> {
    f(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_plain_decimals() {
        assert_eq!(plain_index("0"), Some(0));
        assert_eq!(plain_index("42"), Some(42));
        for bad in ["", "+4", "04", " 4", "4 ", "-1", "1.0", "4a"] {
            assert_eq!(plain_index(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(
            decode_base64("dXNlcjpzZWNyZXQ=").as_deref(),
            Some("user:secret")
        );
        assert_eq!(decode_base64("YTpi").as_deref(), Some("a:b"));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
