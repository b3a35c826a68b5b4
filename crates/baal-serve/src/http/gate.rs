//! What every request passes before a handler runs: the access token (before a byte of the
//! body is read), the route's body limit, the body timeout, and one log line per request at
//! debug level.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ServeError;
use crate::service::Service;

/// The largest body the labelling API takes (its requests are a few fields).
pub const API_BODY_LIMIT: usize = 16 * 1024;
/// The largest body of Label Studio's `/webhook` and `/setup` (one annotation, or a labelling
/// config; `ANNOTATIONS_CREATED` batches stay far below it).
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;
/// The largest body of Label Studio's `/predict` and `/train` (many tasks at once).
pub const LABEL_STUDIO_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What the gate knows besides the service.
pub(super) struct Gate {
    pub service: Arc<Service>,
    pub body_timeout: Duration,
}

/// What a path needs.
#[derive(Debug, PartialEq)]
enum Access {
    /// The page and its files, and Label Studio's root `/health`: no token.
    Public,
    /// Everything else: the token, in the path (`/ls/<token>/...`), a header or the query;
    /// and a body of at most this many bytes.
    Token {
        in_path: Option<String>,
        body_limit: usize,
    },
}

fn access(path: &str) -> Access {
    if matches!(path, "/" | "/app.js" | "/style.css" | "/health") {
        return Access::Public;
    }
    let (in_path, call) = match path.strip_prefix("/ls/") {
        Some(rest) => match rest.split_once('/') {
            Some((token, call)) => (Some(token.to_string()), call),
            None => (Some(rest.to_string()), ""),
        },
        None => (None, path.trim_start_matches('/')),
    };
    let body_limit = match call {
        "predict" | "train" => LABEL_STUDIO_BODY_LIMIT,
        "webhook" | "setup" => WEBHOOK_BODY_LIMIT,
        _ => API_BODY_LIMIT,
    };
    Access::Token {
        in_path,
        body_limit,
    }
}

/// The token a request carries: `Authorization: Bearer <token>` (the scheme in any case),
/// `Authorization: Basic` with the token as password (what Label Studio sends), or
/// `?token=<token>` (image links), percent-decoded.
fn presented_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, credentials) = v.trim().split_once(' ')?;
            let credentials = credentials.trim();
            if scheme.eq_ignore_ascii_case("bearer") {
                Some(credentials.to_string())
            } else if scheme.eq_ignore_ascii_case("basic") {
                super::decode_base64(credentials)
                    .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()))
            } else {
                None
            }
        });
    from_header.or_else(|| {
        query?
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .and_then(percent_decode)
    })
}

/// `%XX` escapes (and `+` as a space) decoded; `None` for a malformed escape or non-UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Checks the access token of `parts` for a route of `access`.
fn check_token(
    service: &Service,
    access: &Access,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), ServeError> {
    let Access::Token { in_path, .. } = access else {
        return Ok(());
    };
    let token = match in_path {
        Some(token) => Some(token.clone()),
        None => presented_token(headers, query),
    };
    match token {
        Some(token) if service.authorized(&token) => Ok(()),
        _ => Err(ServeError::Unauthorized),
    }
}

/// The path as it may be logged: a token in it replaced.
fn loggable(path: &str) -> String {
    match path.strip_prefix("/ls/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, call)) => format!("/ls/<token>/{call}"),
            None => "/ls/<token>".into(),
        },
        None => path.to_string(),
    }
}

/// The gate: the token before the body, the body limit and timeout, then the handler; one
/// debug line per request (method, path without its token, status, milliseconds).
pub(super) async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = loggable(request.uri().path());
    let response = match admit(&gate, request).await {
        Ok(request) => next.run(request).await,
        // The body was not read (or not whole): the connection cannot carry another request,
        // and the client must be told so, or it sends its next request on a connection
        // the server then drops ("Unexpected EOF" in a client that pools connections).
        Err(error) => {
            let mut response = error.into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            response
        }
    };
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// The request with its body read whole, once its token and size are right.
async fn admit(gate: &Gate, request: Request) -> Result<Request, ServeError> {
    let access = access(request.uri().path());
    check_token(
        &gate.service,
        &access,
        request.headers(),
        request.uri().query(),
    )?;
    let Access::Token { body_limit, .. } = access else {
        return Ok(request);
    };
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(request);
    }
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > body_limit as u64) {
        return Err(ServeError::TooLarge(body_limit));
    }
    let (parts, body) = request.into_parts();
    let bytes =
        match tokio::time::timeout(gate.body_timeout, axum::body::to_bytes(body, body_limit)).await
        {
            Err(_) => return Err(ServeError::RequestTimeout(gate.body_timeout)),
            Ok(Err(_)) => return Err(ServeError::TooLarge(body_limit)),
            Ok(Ok(bytes)) => bytes,
        };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_say_what_they_need() {
        assert_eq!(access("/"), Access::Public);
        assert_eq!(access("/health"), Access::Public);
        assert_eq!(
            access("/ls/abc/predict"),
            Access::Token {
                in_path: Some("abc".into()),
                body_limit: LABEL_STUDIO_BODY_LIMIT
            }
        );
        assert_eq!(
            access("/ls/abc/health"),
            Access::Token {
                in_path: Some("abc".into()),
                body_limit: API_BODY_LIMIT
            }
        );
        assert_eq!(
            access("/webhook"),
            Access::Token {
                in_path: None,
                body_limit: WEBHOOK_BODY_LIMIT
            }
        );
        assert_eq!(
            access("/api/label"),
            Access::Token {
                in_path: None,
                body_limit: API_BODY_LIMIT
            }
        );
    }

    #[test]
    fn tokens_are_read_as_http_writes_them() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented_token(&headers, Some("a=1&token=x%41y")),
            Some("xAy".into())
        );
        assert_eq!(presented_token(&headers, Some("token=%4")), None);
        headers.insert(
            header::AUTHORIZATION,
            "bEaReR  tok ".parse().expect("header"),
        );
        assert_eq!(presented_token(&headers, None), Some("tok".into()));
        headers.insert(
            header::AUTHORIZATION,
            "basic dXNlcjpzZWNyZXQ=".parse().expect("header"),
        );
        assert_eq!(presented_token(&headers, None), Some("secret".into()));
        assert_eq!(loggable("/ls/secret/webhook"), "/ls/<token>/webhook");
        assert_eq!(loggable("/api/next"), "/api/next");
    }
}
