//! Encoding requests and decoding responses for the client: ETags, query strings, bounded bodies,
//! JSON and the error body. Functions of data (and one body reader), shared by every operation.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use url::Url;

use super::client::Raw;
use super::error::Error;
use super::types::*;

/// Normalises an ETag: strips `W/` and the quotes, leaving the DataHash.
pub fn normalize_etag(value: &str) -> String {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.trim_matches('"').to_string()
}

/// The whole body, or `None` when it is (or declares to be) larger than `limit` bytes: read chunk by
/// chunk, so a hostile or broken server cannot make the controller allocate more than the limit.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    let declared = resp.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::with_capacity(declared as usize);
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Percent-encodes query values the way the reference shows (`%20` for spaces, `%27` for quotes)
/// rather than form-style `+`.
pub(crate) fn with_query(url: &Url, query: &[(&'static str, String)]) -> Url {
    let mut url = url.clone();
    if query.is_empty() {
        return url;
    }
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    url.set_query(Some(&q.join("&")));
    url
}

pub(crate) fn quoted(etag: &str) -> String {
    format!("\"{}\"", normalize_etag(etag))
}

pub(crate) fn decode<T: DeserializeOwned>(op: &'static str, raw: &Raw) -> Result<T, Error> {
    serde_json::from_slice(&raw.body).map_err(|e| Error::Decode {
        operation: op,
        status: raw.status.as_u16(),
        message: e.to_string(),
        request_id: raw.request_id.clone(),
    })
}

/// Turns a 4xx/5xx into [`Error::Api`], using the `StandardErrorResponse` when the body is one and
/// a short excerpt of the body otherwise (proxies answer with HTML).
pub(crate) fn api_error(
    op: &'static str,
    status: StatusCode,
    request_id: Option<String>,
    body: &[u8],
) -> Error {
    let (code, message) = match serde_json::from_slice::<StandardErrorResponse>(body) {
        Ok(e) if !e.message.is_empty() || !e.code.is_empty() => (e.code, e.message),
        _ => {
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text.trim().chars().take(200).collect();
            let message = if excerpt.is_empty() {
                status.canonical_reason().unwrap_or("no body").to_string()
            } else {
                excerpt
            };
            (String::new(), message)
        }
    };
    Error::Api {
        operation: op,
        status: status.as_u16(),
        code,
        message,
        request_id,
    }
}
