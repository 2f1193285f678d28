//! The controller process: storage, the artifact server, health/metrics, and the reconciler, wired
//! together and stopped together.

use std::sync::Arc;

use anyhow::Context as _;
use kube::Client;

use crate::artifact::Storage;
use crate::drift::{DriftDb, DriftHandles, api::drift_api_router};
use crate::http;
use crate::process::{parse_listen_addr, shutdown_signal};
use crate::source::{self, ControllerOptions, cache::UnitDataCache, metrics::SourceMetrics};
use crate::telemetry::LogFormat;
use crate::telemetry::Metrics;

/// `run`: the controller's flags (Flux's names where Flux has the same flag).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Folder holding artifacts and the unit data cache.
    #[arg(long, default_value = "data")]
    pub storage_path: std::path::PathBuf,
    /// Address the artifact server listens on.
    #[arg(long, default_value = ":9090")]
    pub storage_addr: String,
    /// host[:port] written into artifact URLs (default: the storage address, or this host's name when
    /// listening on all interfaces).
    #[arg(long, default_value = "")]
    pub storage_adv_addr: String,
    /// Address for health probes, metrics and the REST API.
    #[arg(long, default_value = ":8080")]
    pub http_addr: String,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,
    /// Only watch ConfigHubRepositories in this namespace (default: all namespaces).
    #[arg(long, default_value = "")]
    pub watch_namespace: String,
    /// Refuse references to other namespaces (a ConfigHubRepository never makes any; accepted for Flux parity).
    #[arg(long)]
    pub no_cross_namespace_refs: bool,
    /// Older artifacts kept per repository besides the current one.
    #[arg(long, default_value_t = 2)]
    pub artifact_retention_records: usize,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Where drift records live: empty for `<storage-path>/drift.db` (SQLite, one instance), a
    /// `postgres://user:password@host:5432/db` URL for a PostgreSQL database every instance shares (HA),
    /// or a SQLite file path. Read from `DRIFT_DB` when the flag is not given, so the URL (and its password)
    /// can come from a Secret; it is never logged with its password.
    #[arg(long, env = "DRIFT_DB", hide_env_values = true, default_value = "")]
    pub drift_db: SecretArg,
}

/// A flag value that may hold a password: its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretArg(pub String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::drift::store::redact_url(&self.0))
    }
}

/// The address written into artifact URLs: the flag, else the listen address, else this host's name
/// with the listen port (a wildcard address is no address a client can fetch from).
pub fn advertised_addr(storage_addr: &str, adv_addr: &str) -> String {
    if !adv_addr.is_empty() {
        return adv_addr.to_string();
    }
    let (host, port) = storage_addr
        .rsplit_once(':')
        .unwrap_or((storage_addr, "9090"));
    if host.is_empty() || host == "0.0.0.0" || host == "[::]" {
        let name = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{name}:{port}")
    } else {
        storage_addr.to_string()
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let http_addr = parse_listen_addr(&args.http_addr).map_err(anyhow::Error::msg)?;
    let storage_addr = parse_listen_addr(&args.storage_addr).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.storage_path)
        .with_context(|| format!("creating storage path {}", args.storage_path.display()))?;
    let root = args
        .storage_path
        .canonicalize()
        .with_context(|| format!("resolving storage path {}", args.storage_path.display()))?;
    let artifacts_root = root.join("artifacts");
    std::fs::create_dir_all(&artifacts_root)?;

    let storage_listener = tokio::net::TcpListener::bind(storage_addr)
        .await
        .with_context(|| format!("binding the artifact server to {storage_addr}"))?;
    let adv = advertised_addr(
        &storage_listener.local_addr()?.to_string(),
        &args.storage_adv_addr,
    );
    let storage = Storage::new(artifacts_root.clone(), adv.clone());
    for (path, ok) in storage.verify_all() {
        if !ok {
            tracing::warn!(%path, "stored artifact failed verification; it will be rebuilt on the next reconcile");
        }
    }
    let cache = UnitDataCache::new(root.join("cache")).context("opening the unit data cache")?;

    let metrics = Metrics::default();
    let (source_metrics, drift) = {
        let mut registry = metrics.registry.lock().unwrap_or_else(|p| p.into_inner());
        let source_metrics = SourceMetrics::register(&mut registry);
        let db = DriftDb::parse(&args.drift_db.0, &root).map_err(anyhow::Error::msg)?;
        let drift = DriftHandles::open(&db, &mut registry)
            .with_context(|| format!("opening the drift record store {db}"))?;
        (source_metrics, drift)
    };
    drift
        .prime_active_gauge()
        .await
        .context("reading the drift record store")?;
    let state = http::AppState::new(metrics);
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding {http_addr}"))?;
    tracing::info!(
        http = %http_listener.local_addr()?, storage = %storage_listener.local_addr()?,
        advertised = %adv, path = %root.display(), "serving"
    );

    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let options = ControllerOptions {
        watch_namespace: Some(args.watch_namespace.clone()).filter(|n| !n.is_empty()),
        concurrent: args.concurrent.max(1),
        no_cross_namespace_refs: args.no_cross_namespace_refs,
        artifacts_to_keep: args.artifact_retention_records,
    };
    let ctx = source::Context::new(client.clone(), source_metrics, storage, cache, options);
    // One watch of ConfigHubRepositories feeds both the source reconciler and the drift engine.
    let repositories = kube::runtime::reflector::store::Writer::default();
    let engine = crate::drift::engine::DriftEngine::new(
        client,
        Arc::clone(&ctx),
        drift.clone(),
        repositories.as_reader(),
    );

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let artifact_server = tokio::spawn(http::serve(
        storage_listener,
        http::artifact_server::artifact_router(artifacts_root),
        stopped(&stop_tx),
    ));
    let http_server = tokio::spawn(http::serve(
        http_listener,
        http::router_with_api(state.clone(), drift_api_router(drift.api_state())),
        stopped(&stop_tx),
    ));
    let controller = tokio::spawn(source::run(
        Arc::clone(&ctx),
        repositories,
        stopped(&stop_tx),
    ));
    let drift_engine = tokio::spawn(engine.run(stopped(&stop_tx)));
    state.set_ready(true);

    shutdown_signal().await;
    tracing::info!("shutting down");
    state.set_ready(false);
    let _ = stop_tx.send(());
    let _ = controller.await;
    let _ = drift_engine.await;
    let _ = artifact_server.await;
    let _ = http_server.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_address_prefers_the_flag_then_a_concrete_listen_address() {
        assert_eq!(
            advertised_addr("0.0.0.0:9090", "chsc.flux-system.svc:80"),
            "chsc.flux-system.svc:80"
        );
        assert_eq!(advertised_addr("127.0.0.1:9090", ""), "127.0.0.1:9090");
        assert!(advertised_addr("0.0.0.0:9090", "").ends_with(":9090"));
        assert!(!advertised_addr("0.0.0.0:9090", "").starts_with("0.0.0.0"));
    }
}
