//! The HTTP side: the JSON API, the labelling page, and Label Studio's ML-backend protocol,
//! all on one axum router. Store calls run on the async workers directly: each holds the
//! state's lock for in-memory work and at most one journal sync, which costs less than the
//! two thread hops of tokio's blocking pool (measured: the serve bench's p99 went from 36.6 to
//! 18.9 ms).

mod api;
mod label_studio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::error::ServeError;
use crate::service::Service;

/// The largest body the labelling API takes (its requests are a few fields).
pub const API_BODY_LIMIT: usize = 16 * 1024;
/// The largest body the Label Studio routes take (`/predict` carries many tasks).
pub const LABEL_STUDIO_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The service's routes: `/` (the page), `/api/...` (the labelling API) and Label Studio's
/// `/health`, `/setup`, `/predict`, `/webhook`, `/train`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .merge(
            api::routes()
                .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
                .layer(axum::middleware::from_fn(|r, n| {
                    announced_size(r, n, API_BODY_LIMIT)
                })),
        )
        .merge(
            label_studio::routes()
                .layer(DefaultBodyLimit::max(LABEL_STUDIO_BODY_LIMIT))
                .layer(axum::middleware::from_fn(|r, n| {
                    announced_size(r, n, LABEL_STUDIO_BODY_LIMIT)
                })),
        )
        .with_state(service)
}

/// Refuses a body whose announced length (`Content-Length`) is over `limit` before reading
/// it; bodies of unannounced length are cut at the limit as they are read.
async fn announced_size(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    limit: usize,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return ServeError::TooLarge(limit).into_response();
    }
    next.run(request).await
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

/// Checks the access token: `Authorization: Bearer <token>`, `Authorization: Basic` with the
/// token as password (what Label Studio sends), or `?token=<token>` (image links).
fn authorize(
    service: &Service,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), ServeError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            if let Some(token) = v.strip_prefix("Bearer ") {
                Some(token.trim().to_string())
            } else {
                v.strip_prefix("Basic ")
                    .and_then(|b| decode_base64(b.trim()))
                    .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()))
            }
        });
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token=").map(String::from))
    });
    match from_header.or(from_query) {
        Some(token) if service.authorized(&token) => Ok(()),
        _ => Err(ServeError::Unauthorized),
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

/// Parses a JSON body, or says what is wrong with it.
fn parse_json<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, ServeError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::TooLarge(limit)
        } else {
            ServeError::BadRequest(format!("cannot read the body: {rejection}"))
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ServeError::BadRequest(format!("malformed JSON body: {e}")))
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

/// A server running on its own thread; [`stop`](Self::stop) (or dropping it) shuts it down
/// gracefully.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// Binds `addr` (port 0: any free port) and serves `service` on a tokio runtime of its own.
    ///
    /// # Errors
    /// The address cannot be bound, or the runtime cannot start.
    pub fn start(service: Arc<Service>, addr: SocketAddr) -> Result<Self, ServeError> {
        let bind_error = |e| ServeError::Config(format!("cannot listen on {addr}: {e}"));
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("baal-serve")
            .build()
            .map_err(|e| ServeError::Config(format!("cannot start tokio: {e}")))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(service);
        let thread = std::thread::Builder::new()
            .name("baal-serve-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    use axum::serve::ListenerExt;
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| ServeError::Config(format!("cannot listen: {e}")))?
                        // Small answers go out at once, not after the client's delayed ACK.
                        .tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await
                        .map_err(|e| ServeError::Config(format!("server: {e}")))
                })
            })
            .map_err(|e| ServeError::Config(format!("cannot start the server thread: {e}")))?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server ends (it runs until stopped).
    ///
    /// # Errors
    /// The server failed.
    pub fn wait(mut self) -> Result<(), ServeError> {
        self.join()
    }

    /// Stops accepting requests, finishes the ones in flight, and returns.
    ///
    /// # Errors
    /// The server failed.
    pub fn stop(mut self) -> Result<(), ServeError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.join()
    }

    fn join(&mut self) -> Result<(), ServeError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ServeError::Config("the server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
