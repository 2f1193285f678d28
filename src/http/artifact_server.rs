//! The artifact file server kustomize-controller fetches from (`--storage-addr`).
//!
//! Unlike Flux's own file server it lists no directories and serves nothing but regular files under the
//! storage root: every request path is decoded once, must consist of plain components (no `.`/`..`,
//! no empty segments, no hidden names — in-progress writes are hidden temp files), and must still be
//! under the root after symlinks are resolved. Everything else is a 404, so probing reveals nothing.

use std::io;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;

/// Read size for streaming a file: large enough to keep syscalls low, small enough to stay out of the way.
const CHUNK: usize = 64 * 1024;

/// A router serving the files under `root` with GET and HEAD.
pub fn artifact_router(root: PathBuf) -> Router {
    Router::new().fallback(serve_file).with_state(root)
}

async fn serve_file(State(root): State<PathBuf>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
        )
            .into_response();
    }
    let Some(relative) = safe_relative_path(uri.path()) else {
        return not_found();
    };
    match open_under_root(&root, &relative).await {
        Ok(Some((file, len))) => {
            let content_type = if relative.ends_with(".tar.gz") || relative.ends_with(".tgz") {
                "application/gzip"
            } else {
                "application/octet-stream"
            };
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from_stream(file_stream(file))
            };
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            response
        }
        Ok(None) => not_found(),
        Err(err) => {
            tracing::warn!(path = %relative, error = %err, "artifact server: reading file");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Decodes the request path and keeps it only if every segment is a plain, visible name.
pub(crate) fn safe_relative_path(raw: &str) -> Option<String> {
    let decoded = percent_decode(raw)?;
    let rest = decoded.strip_prefix('/')?;
    if rest.is_empty() || rest.contains('\\') || rest.contains('\0') {
        return None;
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment.starts_with('.') || segment.chars().any(char::is_control) {
            return None;
        }
    }
    Some(rest.to_string())
}

/// Strict percent-decoding: malformed escapes or non-UTF-8 results are refused rather than guessed.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Opens `root/relative` if it is a regular file whose real path is under the real root.
async fn open_under_root(
    root: &Path,
    relative: &str,
) -> io::Result<Option<(tokio::fs::File, u64)>> {
    let not_found = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound
                | io::ErrorKind::NotADirectory
                | io::ErrorKind::PermissionDenied
        )
    };
    let real_root = match tokio::fs::canonicalize(root).await {
        Ok(p) => p,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let real = match tokio::fs::canonicalize(root.join(relative)).await {
        Ok(p) => p,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !real.starts_with(&real_root) {
        return Ok(None);
    }
    let file = match tokio::fs::File::open(&real).await {
        Ok(f) => f,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Checked on the open handle, so a swap between the check and the read cannot slip a directory in.
    let md = file.metadata().await?;
    if !md.is_file() {
        return Ok(None);
    }
    Ok(Some((file, md.len())))
}

fn file_stream(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = io::Result<axum::body::Bytes>> + Send + 'static {
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((axum::body::Bytes::from(buf), file)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_and_checked() {
        assert_eq!(
            safe_relative_path("/a/b.tar.gz").as_deref(),
            Some("a/b.tar.gz")
        );
        assert_eq!(safe_relative_path("/a%2Db").as_deref(), Some("a-b"));
        for bad in [
            "/",
            "",
            "/../x",
            "/a/../b",
            "/%2e%2e/x",
            "/%2E%2E%2Fx",
            "/a/./b",
            "/a//b",
            "/a\\b",
            "/a%5cb",
            "//etc/passwd",
            "/%2fetc/passwd",
            "/.tmp-x",
            "/a%00b",
            "/%zz",
            "/%",
            "/%c3",
            "a",
        ] {
            assert_eq!(safe_relative_path(bad), None, "{bad:?}");
        }
    }
}
