//! The controller process: storage, the artifact server, health/metrics, and the reconciler, wired
//! together and stopped together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use kube::Client;

use crate::artifact::Storage;
use crate::artifact::served::ServedFiles;
use crate::drift::{DriftDb, DriftHandles, api::drift_api_router};
use crate::http;
use crate::leader::{ElectionMetrics, LeaderElectionArgs, LeaderElector};
use crate::notification::Notifier;
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
    /// Memory for artifacts the artifact server has read, in MiB (0: always read the disk). A current
    /// artifact is then served with no disk read or blocking-pool trip; files over 1 MiB (or a
    /// quarter of this) are always read from disk.
    #[arg(long, default_value_t = 64)]
    pub storage_cache_mib: u64,
    /// Address for health probes, metrics and the REST API.
    #[arg(long, default_value = ":8080")]
    pub http_addr: String,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,
    /// ConfigHub requests in flight at once, across every repository and the drift engine (more wait
    /// their turn; a retry's backoff holds none).
    #[arg(long, default_value_t = source::DEFAULT_CONFIGHUB_CONCURRENT_REQUESTS)]
    pub confighub_concurrent_requests: usize,
    /// Only watch ConfigHubRepositories in this namespace (default: all namespaces).
    #[arg(long, default_value = "")]
    pub watch_namespace: String,
    /// Only watch ConfigHubRepositories with matching labels, e.g. `sharding.fluxcd.io/key=shard1` on a
    /// shard and `!sharding.fluxcd.io/key` on the main instance (Flux's sharding); default: all.
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,
    /// Refuse references to other namespaces (a ConfigHubRepository never makes any; accepted for Flux parity).
    #[arg(long)]
    pub no_cross_namespace_refs: bool,
    /// Older artifacts kept per repository besides the current one.
    #[arg(long, default_value_t = 2)]
    pub artifact_retention_records: usize,
    /// The address of the events receiver: Flux's notification-controller, e.g.
    /// `http://notification-controller.flux-system.svc.cluster.local./` (none when empty).
    #[arg(long, default_value = "")]
    pub events_addr: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
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
        format!("{}:{port}", crate::process::hostname())
    } else {
        storage_addr.to_string()
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let election = args.leader_election.config().map_err(anyhow::Error::msg)?;
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
    let served = ServedFiles::new(args.storage_cache_mib.saturating_mul(1 << 20));
    let storage = Storage::new(artifacts_root.clone(), adv.clone()).with_served(served.clone());
    for (path, ok) in storage.verify_all() {
        if !ok {
            tracing::warn!(%path, "stored artifact failed verification; it will be rebuilt on the next reconcile");
        }
    }
    let cache = UnitDataCache::new(root.join("cache")).context("opening the unit data cache")?;

    let metrics = Metrics::default();
    let (source_metrics, drift, election_metrics, notifier) = {
        let mut registry = metrics.registry.lock().unwrap_or_else(|p| p.into_inner());
        let source_metrics = SourceMetrics::register(&mut registry);
        served.register_metrics(&mut registry);
        let db = DriftDb::parse(&args.drift_db.0, &root).map_err(anyhow::Error::msg)?;
        let drift = DriftHandles::open(&db, &mut registry)
            .with_context(|| format!("opening the drift record store {db}"))?;
        let election_metrics = election
            .as_ref()
            .map(|c| ElectionMetrics::register(&mut registry, &c.name));
        let notifier = match args.events_addr.as_str() {
            "" => None,
            addr => {
                let url = url::Url::parse(addr)
                    .with_context(|| format!("--events-addr {addr:?} is not a URL"))?;
                Some(Notifier::start(
                    url,
                    crate::process::hostname(),
                    &mut registry,
                )?)
            }
        };
        (source_metrics, drift, election_metrics, notifier)
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

    let client = kube_client().await?;
    if let Some(aside) = &drift.moved_aside {
        crate::pod_event::warn_on_own_pod(
            client.clone(),
            "DriftDatabaseMovedAside",
            format!(
                "the drift record database was unreadable; it was moved to {} and a new one started",
                aside.display()
            ),
        )
        .await;
    }
    let options = ControllerOptions {
        watch_namespace: Some(args.watch_namespace.clone()).filter(|n| !n.is_empty()),
        label_selector: Some(args.watch_label_selector.clone()).filter(|s| !s.is_empty()),
        concurrent: args.concurrent.max(1),
        no_cross_namespace_refs: args.no_cross_namespace_refs,
        artifacts_to_keep: args.artifact_retention_records,
        confighub_concurrent_requests: args.confighub_concurrent_requests.max(1),
    };
    let mut elector = election
        .zip(election_metrics)
        .map(|(config, metrics)| LeaderElector::new(client.clone(), config, metrics));
    if let Some(selector) = &options.label_selector {
        check_label_selector(&client, options.watch_namespace.as_deref(), selector).await?;
    }
    let ctx = source::Context::new(
        client.clone(),
        source_metrics,
        storage,
        cache,
        options,
        notifier,
    );
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
    // A follower's artifact server answers 503 (and its /readyz too, so a Service routes to the
    // leader only): it builds nothing, so it has no current artifact to serve.
    let leading = Arc::new(AtomicBool::new(elector.is_none()));
    let artifact_server = tokio::spawn(http::serve(
        storage_listener,
        http::gated(
            http::artifact_server::artifact_router_with(artifacts_root, served),
            Arc::clone(&leading),
            "not the leader",
        ),
        stopped(&stop_tx),
    ));
    let http_server = tokio::spawn(http::serve(
        http_listener,
        http::router_with_api(state.clone(), drift_api_router(drift.api_state())),
        stopped(&stop_tx),
    ));

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    if let Some(elector) = elector.as_mut() {
        tokio::select! {
            () = elector.acquire() => {}
            () = &mut shutdown => {
                tracing::info!("shutting down before becoming the leader");
                let _ = stop_tx.send(());
                let _ = artifact_server.await;
                let _ = http_server.await;
                return Ok(());
            }
        }
    }
    // Only the leader (or the only instance) watches, reconciles, remediates and writes fix units.
    leading.store(true, Ordering::SeqCst);
    let controller = tokio::spawn(source::run(
        Arc::clone(&ctx),
        repositories,
        stopped(&stop_tx),
    ));
    let drift_engine = tokio::spawn(engine.run(stopped(&stop_tx)));
    state.set_ready(true);

    let lost = match elector.as_mut() {
        Some(elector) => tokio::select! {
            lost = elector.hold() => Some(lost),
            () = &mut shutdown => None,
        },
        None => {
            shutdown.await;
            None
        }
    };
    if let Some(lost) = lost {
        // Another instance may be leading already: stop at once, without draining, and let the
        // process exit (as controller-runtime does); Kubernetes restarts it as a candidate.
        state.set_ready(false);
        leading.store(false, Ordering::SeqCst);
        controller.abort();
        drift_engine.abort();
        return Err(anyhow::anyhow!("leader election lost: {lost}"));
    }
    tracing::info!("shutting down");
    state.set_ready(false);
    leading.store(false, Ordering::SeqCst);
    let _ = stop_tx.send(());
    // Reconciles in flight may finish; what is still running after the bound is aborted, so the
    // process ends (and releases the Lease) within the pod's grace period, as controller-runtime's
    // GracefulShutdownTimeout does.
    stop_within(controller, "the source reconciler").await;
    stop_within(drift_engine, "the drift engine").await;
    if let Some(elector) = elector.as_mut()
        && elector.config().release_on_cancel
    {
        elector.release().await;
    }
    let _ = artifact_server.await;
    let _ = http_server.await;
    Ok(())
}

/// The Kubernetes client, sending `confighub-source-controller/<version>` as its user agent (as
/// every Flux controller names itself), so the API server's audit log and priority-and-fairness rules
/// can tell its requests apart.
async fn kube_client() -> anyhow::Result<Client> {
    let mut config = kube::Config::infer()
        .await
        .context("connecting to Kubernetes")?;
    let agent = concat!("confighub-source-controller/", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        reqwest::header::USER_AGENT,
        reqwest::header::HeaderValue::from_static(agent),
    ));
    Client::try_from(config).context("connecting to Kubernetes")
}

/// How long a graceful shutdown waits for the reconcilers (the chart's grace period is 30 s).
const GRACEFUL_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(20);

/// Waits for `task` to finish after the stop signal, aborting it after [`GRACEFUL_SHUTDOWN`].
async fn stop_within(mut task: tokio::task::JoinHandle<()>, what: &str) {
    if tokio::time::timeout(GRACEFUL_SHUTDOWN, &mut task)
        .await
        .is_err()
    {
        tracing::warn!("{what} did not stop within {GRACEFUL_SHUTDOWN:?}; aborting it");
        task.abort();
        let _ = task.await;
    }
}

/// Fails fast on a selector the API server refuses (it would otherwise fail every watch in silence).
async fn check_label_selector(
    client: &Client,
    namespace: Option<&str>,
    selector: &str,
) -> anyhow::Result<()> {
    use crate::api::ConfigHubRepository;
    use kube::api::{Api, ListParams};
    let api: Api<ConfigHubRepository> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api
        .list_metadata(&ListParams::default().labels(selector).limit(1))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 400 => Err(anyhow::anyhow!(
            "--watch-label-selector {selector:?} is not a valid label selector: {}",
            status.message
        )),
        // Anything else (the API server not up yet, a missing CRD) the watch reports and retries.
        _ => Ok(()),
    }
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
