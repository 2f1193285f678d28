//! Process helpers shared by the long-running subcommands (`run`, `hub`): listen addresses as Flux
//! flags write them, and the shutdown signal.

use std::net::SocketAddr;

/// Parses Go-style listen addresses (`:8080`, `127.0.0.1:8080`) as Flux flags accept them.
pub fn parse_listen_addr(addr: &str) -> Result<SocketAddr, String> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse()
        .map_err(|e| format!("invalid listen address {addr:?}: {e}"))
}

/// This host's name (the pod's name in a cluster): `$HOSTNAME`, else `/etc/hostname`, else `localhost`.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Resolves on SIGINT or SIGTERM so the servers drain cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_accept_go_style_ports() {
        assert_eq!(parse_listen_addr(":8080").unwrap().port(), 8080);
        assert_eq!(
            parse_listen_addr("127.0.0.1:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert!(
            parse_listen_addr("nonsense")
                .unwrap_err()
                .contains("nonsense")
        );
    }
}
