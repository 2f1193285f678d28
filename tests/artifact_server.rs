//! The artifact server over real HTTP on 127.0.0.1:0. Raw requests are used for traversal attempts,
//! because HTTP clients normalise `..` and `%2e%2e` away before sending.

use std::path::Path;

use confighub_source_controller::http::artifact_server::artifact_router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(root: &Path) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = artifact_router(root.to_path_buf());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends `METHOD target` verbatim; returns (status, lower-cased head, body).
async fn raw(addr: std::net::SocketAddr, method: &str, target: &str) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

fn fixture() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("confighubrepository/ns/repo");
    std::fs::create_dir_all(&obj).unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(obj.join("abc.tar.gz"), &body).unwrap();
    std::fs::write(obj.join(".tmp-abc-1"), b"partial").unwrap();
    (dir, body)
}

#[tokio::test]
async fn get_streams_the_file_with_length_and_type() {
    let (dir, body) = fixture();
    let addr = start(dir.path()).await;
    let url = format!("http://{addr}/confighubrepository/ns/repo/abc.tar.gz");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/gzip");
    assert_eq!(
        response.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), body.as_slice());
}

/// Files over the size read whole (1 MiB) are streamed in chunks; the bytes and length must match.
#[tokio::test]
async fn a_large_file_is_streamed_intact() {
    let (dir, _) = fixture();
    let big: Vec<u8> = (0..3_000_007u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(
        dir.path().join("confighubrepository/ns/repo/big.tar.gz"),
        &big,
    )
    .unwrap();
    let addr = start(dir.path()).await;
    let url = format!("http://{addr}/confighubrepository/ns/repo/big.tar.gz");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        big.len().to_string().as_str()
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), big.as_slice());
    let (status, head, body) = raw(addr, "HEAD", "/confighubrepository/ns/repo/big.tar.gz").await;
    assert_eq!((status, body.len()), (200, 0));
    assert!(head.contains("content-length: 3000007"), "{head}");
}

#[tokio::test]
async fn head_reports_length_without_body() {
    let (dir, body) = fixture();
    let addr = start(dir.path()).await;
    let (status, head, rest) = raw(addr, "HEAD", "/confighubrepository/ns/repo/abc.tar.gz").await;
    assert_eq!(status, 200);
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    assert!(head.contains("content-type: application/gzip"), "{head}");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn listings_traversal_and_hidden_files_are_404() {
    let (dir, _) = fixture();
    let outside = dir.path().parent().unwrap().join(format!(
        "secret-{}",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&outside, b"secret").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, dir.path().join("link.tar.gz")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    }
    let outside_name = outside.file_name().unwrap().to_string_lossy().into_owned();
    let addr = start(dir.path()).await;
    let targets = [
        "/".to_string(),
        "/confighubrepository".into(),
        "/confighubrepository/".into(),
        "/confighubrepository/ns/repo/".into(),
        "/confighubrepository/ns/repo/missing.tar.gz".into(),
        "/confighubrepository/ns/repo/.tmp-abc-1".into(),
        format!("/../{outside_name}"),
        format!("/%2e%2e/{outside_name}"),
        format!("/%2E%2E%2F{outside_name}"),
        format!("/confighubrepository/..%2f..%2f..%2f{outside_name}"),
        "/confighubrepository/ns/repo/..\\..\\abc.tar.gz".into(),
        "/confighubrepository%5cns%5crepo%5cabc.tar.gz".into(),
        "//etc/passwd".into(),
        "/%2fetc/passwd".into(),
        "/link.tar.gz".into(),
        "/etc/passwd".into(),
        "/confighubrepository/ns/repo/abc.tar.gz%00".into(),
    ];
    for target in &targets {
        let (status, _, body) = raw(addr, "GET", target).await;
        assert_eq!(status, 404, "GET {target}");
        assert!(
            !String::from_utf8_lossy(&body).contains("secret"),
            "{target}"
        );
    }
    // An absolute-form request target must not escape either.
    let (status, _, _) = raw(addr, "GET", &format!("http://test{}", outside.display())).await;
    assert_eq!(status, 404);
    std::fs::remove_file(&outside).unwrap();
}

#[tokio::test]
async fn other_methods_are_405() {
    let (dir, _) = fixture();
    let addr = start(dir.path()).await;
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, head, _) = raw(addr, method, "/confighubrepository/ns/repo/abc.tar.gz").await;
        assert_eq!(status, 405, "{method}");
        assert!(head.contains("allow: get, head"), "{head}");
    }
}

#[tokio::test]
async fn missing_root_is_404_not_500() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir.path().join("not-created-yet")).await;
    let (status, _, _) = raw(addr, "GET", "/a/b.tar.gz").await;
    assert_eq!(status, 404);
}

/// With memory ([`ServedFiles`]): a file is served from memory once read, and never after the storage
/// deleted it (garbage collection, the repository's deletion).
#[tokio::test]
async fn files_kept_in_memory_go_when_the_storage_deletes_them() {
    use confighub_source_controller::artifact::served::ServedFiles;
    use confighub_source_controller::artifact::storage::Storage;
    use confighub_source_controller::http::artifact_server::artifact_router_with;

    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("confighubrepository/ns/repo");
    std::fs::create_dir_all(&obj).unwrap();
    let (old, current) = (
        format!("{}.tar.gz", "a".repeat(64)),
        format!("{}.tar.gz", "b".repeat(64)),
    );
    std::fs::write(obj.join(&old), b"old artifact").unwrap();
    std::fs::write(obj.join(&current), b"current artifact").unwrap();
    let served = ServedFiles::new(1 << 20);
    let mut registry = prometheus_client::registry::Registry::default();
    served.register_metrics(&mut registry);
    let storage =
        Storage::new(dir.path().to_path_buf(), "127.0.0.1:1".into()).with_served(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = artifact_router_with(dir.path().to_path_buf(), served);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let target = |file: &str| format!("/confighubrepository/ns/repo/{file}");

    for file in [&old, &current] {
        assert_eq!(raw(addr, "GET", &target(file)).await.0, 200);
    }
    // Kept: the disk no longer matters to it (a stored file never changes; only the storage deletes).
    std::fs::write(obj.join(&current), b"changed behind the storage's back").unwrap();
    let (status, head, body) = raw(addr, "GET", &target(&current)).await;
    assert_eq!((status, body.as_slice()), (200, &b"current artifact"[..]));
    assert!(head.contains("content-length: 16"), "{head}");
    let (status, head, body) = raw(addr, "HEAD", &target(&current)).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-length: 16") && body.is_empty(),
        "{head}"
    );

    let current_path = format!("confighubrepository/ns/repo/{current}");
    let deleted = storage
        .gc("confighubrepository", "ns", "repo", &current_path, 0)
        .unwrap();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(raw(addr, "GET", &target(&old)).await.0, 404);
    assert_eq!(raw(addr, "GET", &target(&current)).await.0, 200);

    storage
        .remove_object("confighubrepository", "ns", "repo")
        .unwrap();
    assert_eq!(raw(addr, "GET", &target(&current)).await.0, 404);

    // What an operator sees: two reads from disk, three answers from memory, nothing held at the end.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "confighub_source_artifact_served_total{from=\"disk\"} 2",
        "confighub_source_artifact_served_total{from=\"memory\"} 3",
        "confighub_source_artifact_memory_bytes 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}
