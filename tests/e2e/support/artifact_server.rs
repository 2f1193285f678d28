//! A throwaway HTTP server inside the test process, for handing a tarball to kustomize-controller before
//! (or independently of) the controller's own artifact server.

use axum::Router;
use axum::routing::get;

/// Serves `bytes` at `http://127.0.0.1:<port>/<name>` until the test's runtime ends; returns the URL.
pub async fn serve_bytes(name: &str, bytes: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        &format!("/{name}"),
        get(move || async move { bytes.clone() }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/{name}")
}

/// A gzip'd tar holding `files` (name, content), the shape Flux expects of an artifact.
pub fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}
