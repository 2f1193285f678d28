//! Cross-cutting behaviour of every hub response: bearer auth (all routes but `GET /api/info` and
//! `POST /auth/worker`),
//! `X-Request-Id` and `ConfigHub-Version` headers, and rewriting framework-generated errors (bad
//! query strings, oversized bodies, unknown methods) into the documented JSON error body.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{CONFIGHUB_VERSION, Hub};
use crate::confighub::MAX_QUERY_CHARS;

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn api_layer(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let public = path == "/api/info" || path == "/auth/worker";
    let authorized = public || bearer(&req).is_some_and(|t| hub.accepts_token(t));
    let query_len = req.uri().query().map_or(0, str::len);
    let response = if !authorized {
        ApiError::unauthorized().into_response()
    } else if query_len > MAX_QUERY_CHARS {
        // As the service: a query string over 8,192 characters is refused (clients chunk `IN` lists).
        ApiError::bad_request(format!(
            "query string of {query_len} characters is longer than {MAX_QUERY_CHARS}"
        ))
        .into_response()
    } else {
        next.run(req).await
    };
    let mut response = shape_error(response).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), %request_id, "hub request");
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    headers.insert(
        "confighub-version",
        HeaderValue::from_static(CONFIGHUB_VERSION),
    );
    response
}

/// Wraps a non-JSON error produced by axum itself in `{"Code","Message"}`.
async fn shape_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::new(status, message).into_response()
}
