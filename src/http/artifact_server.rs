//! The artifact file server kustomize-controller fetches from (`--storage-addr`).
//!
//! Unlike Flux's own file server it lists no directories and serves nothing but regular files under the
//! storage root: every request path is decoded once, must consist of plain components (no `.`/`..`,
//! no empty segments, no hidden names — in-progress writes are hidden temp files), and must still be
//! under the root after symlinks are resolved. Everything else is a 404, so probing reveals nothing.
//! A file read whole is kept in memory ([`ServedFiles`]) and served from there until the storage
//! writes or deletes it.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;

use crate::artifact::served::ServedFiles;

/// Files up to this size are read whole by the blocking call that opens them and sent as one body:
/// one trip to the blocking pool per request instead of one per chunk (the 10,000-unit artifact of
/// hack/bench-pack.sh is ~0.8 MB). Larger files are streamed in [`CHUNK`]s.
const WHOLE: u64 = 1 << 20;
/// Read size for streaming a larger file.
const CHUNK: usize = 256 * 1024;

/// A router serving the files under `root` with GET and HEAD, always from disk.
pub fn artifact_router(root: PathBuf) -> Router {
    artifact_router_with(root, ServedFiles::default())
}

/// [`artifact_router`] keeping what it reads in `served`, which must be the one the storage writing
/// under `root` was given ([`crate::artifact::storage::Storage::with_served`]).
pub fn artifact_router_with(root: PathBuf, served: ServedFiles) -> Router {
    Router::new()
        .fallback(serve_file)
        .with_state((root, served))
}

async fn serve_file(
    State((root, served)): State<(PathBuf, ServedFiles)>,
    method: Method,
    uri: Uri,
) -> Response {
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
    let read_whole = method == Method::GET;
    let content_type = if relative.ends_with(".tar.gz") || relative.ends_with(".tgz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    };
    if let Some(bytes) = served.get(&relative) {
        let len = bytes.len() as u64;
        let body = if read_whole {
            Body::from(bytes)
        } else {
            Body::empty()
        };
        return file_response(body, len, content_type);
    }
    let ticket = served.ticket();
    // One blocking call resolves, checks, opens and (for most artifacts) reads the file.
    let opened = tokio::task::spawn_blocking({
        let relative = relative.clone();
        move || open_under_root(&root, &relative, read_whole)
    })
    .await
    .unwrap_or_else(|join| Err(io::Error::other(join)));
    if matches!(opened, Ok(Some(_))) {
        served.served_from_disk();
    }
    let (body, len) = match opened {
        Ok(Some(Opened::Whole(bytes))) => {
            let len = bytes.len() as u64;
            served.keep(&relative, bytes.clone(), ticket);
            (Body::from(bytes), len)
        }
        Ok(Some(Opened::File(_, len))) if method == Method::HEAD => (Body::empty(), len),
        Ok(Some(Opened::File(file, len))) => (Body::from_stream(file_stream(file, len)), len),
        Ok(None) => return not_found(),
        Err(err) => {
            tracing::warn!(path = %relative, error = %err, "artifact server: reading file");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    file_response(body, len, content_type)
}

fn file_response(body: Body, len: u64, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
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

/// A file found under the root: read whole, or open for streaming with its length.
enum Opened {
    Whole(Bytes),
    File(std::fs::File, u64),
}

/// Opens `root/relative` if it is a regular file whose real path is under the real root; with
/// `read_whole`, a file of at most [`WHOLE`] bytes comes back read. Blocking.
fn open_under_root(root: &Path, relative: &str, read_whole: bool) -> io::Result<Option<Opened>> {
    let not_found = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound
                | io::ErrorKind::NotADirectory
                | io::ErrorKind::PermissionDenied
        )
    };
    let real_root = match std::fs::canonicalize(root) {
        Ok(p) => p,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let real = match std::fs::canonicalize(root.join(relative)) {
        Ok(p) => p,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !real.starts_with(&real_root) {
        return Ok(None);
    }
    let mut file = match std::fs::File::open(&real) {
        Ok(f) => f,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Checked on the open handle, so a swap between the check and the read cannot slip a directory in.
    let md = file.metadata()?;
    if !md.is_file() {
        return Ok(None);
    }
    if read_whole && md.len() <= WHOLE {
        // Stored artifacts never change (content-addressed names, written by rename), so the length
        // read is the file's; the Content-Length is taken from what was read all the same.
        let mut buf = Vec::with_capacity(md.len() as usize);
        (&mut file).take(WHOLE).read_to_end(&mut buf)?;
        return Ok(Some(Opened::Whole(Bytes::from(buf))));
    }
    Ok(Some(Opened::File(file, md.len())))
}

/// The file in [`CHUNK`]s, each read in one trip to the blocking pool.
fn file_stream(
    file: std::fs::File,
    len: u64,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let file = tokio::fs::File::from_std(file);
    futures::stream::try_unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, left - n as u64))))
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
