//! Serves a folder with the controller's artifact server (the same router and the same `serve` as
//! `run --storage-addr`), for load tests of the server alone:
//! `cargo run --release --example artifact_serve -- <folder> <addr> [cache MiB, default 64 as the controller's]`.

use confighub_source_controller::artifact::served::ServedFiles;
use confighub_source_controller::http::{artifact_server::artifact_router_with, serve};

/// The allocator of the controller's binary (src/main.rs), so the server runs as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| ".".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9090".into());
    let cache_mib: u64 = match args.next() {
        Some(mib) => mib.parse().map_err(std::io::Error::other)?,
        None => 64,
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("serving {root} on {}", listener.local_addr()?);
    serve(
        listener,
        artifact_router_with(root.into(), ServedFiles::new(cache_mib << 20)),
        std::future::pending(),
    )
    .await
}
