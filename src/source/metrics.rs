//! Reconcile metrics, named as every Flux controller names them so existing dashboards work.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl ObjectLabels {
    /// The labels of one ConfigHubRepository.
    pub fn repository(namespace: &str, name: &str) -> Self {
        use kube::Resource;
        Self {
            kind: crate::api::ConfigHubRepository::kind(&()).to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub reason: String,
}

/// `confighub_client_requests_total{operation,code}`: `code` is the HTTP status, or `error` when no
/// response arrived.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub code: String,
}

/// `confighub_client_response_bytes_total{operation}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

/// Counts the requests of every ConfigHub client the controller makes, and the bytes of their answers.
#[derive(Clone, Default)]
pub struct ClientRequests(
    pub Family<RequestLabels, Counter>,
    pub Family<OperationLabels, Counter>,
);

impl crate::confighub::RequestObserver for ClientRequests {
    fn observe(&self, operation: &'static str, code: &str) {
        self.0
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    fn observe_bytes(&self, operation: &'static str, bytes: u64) {
        self.1
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .inc_by(bytes);
    }
}

#[derive(Clone)]
pub struct SourceMetrics {
    /// `gotk_reconcile_duration_seconds{kind,name,namespace}`, as in Flux.
    pub reconcile_duration: Family<ObjectLabels, Histogram>,
    pub reconcile_failures: Family<FailureLabels, Counter>,
    pub artifacts_stored: Family<ObjectLabels, Counter>,
    pub unit_downloads: Counter,
    pub unit_cache_hits: Counter,
    /// Reconciles whose units were exactly those of the stored artifact, so nothing was rebuilt.
    pub builds_skipped: Family<ObjectLabels, Counter>,
    /// Every HTTP request to ConfigHub, by operation and status code (token exchanges included).
    pub client_requests: ClientRequests,
    /// Failures of the ConfigHubRepository watch (API server unreachable, refused, too old a
    /// version): while it fails the controller sees no spec changes. kube's watcher retries with
    /// backoff.
    pub watch_errors: Counter,
}

impl SourceMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
            }),
            reconcile_failures: Family::default(),
            artifacts_stored: Family::default(),
            unit_downloads: Counter::default(),
            unit_cache_hits: Counter::default(),
            builds_skipped: Family::default(),
            client_requests: ClientRequests::default(),
            watch_errors: Counter::default(),
        };
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a ConfigHubRepository reconciliation.",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "confighub_source_reconcile_failures",
            "Failed reconciliations by reason.",
            metrics.reconcile_failures.clone(),
        );
        registry.register(
            "confighub_source_artifacts_stored",
            "Artifacts written to storage (new revisions).",
            metrics.artifacts_stored.clone(),
        );
        registry.register(
            "confighub_source_unit_downloads",
            "Unit data downloads from ConfigHub (cache misses).",
            metrics.unit_downloads.clone(),
        );
        registry.register(
            "confighub_source_unit_cache_hits",
            "Unit data served from the local content-addressed cache.",
            metrics.unit_cache_hits.clone(),
        );
        registry.register(
            "confighub_source_builds_skipped",
            "Reconciles that found the same units as the stored artifact and did not rebuild it.",
            metrics.builds_skipped.clone(),
        );
        registry.register(
            "confighub_client_requests",
            "HTTP requests to ConfigHub by operation and status code ('error' when none arrived), retries and token exchanges included.",
            metrics.client_requests.0.clone(),
        );
        registry.register(
            "confighub_client_response_bytes",
            "Body bytes of ConfigHub's answers by operation (an unchanged space costs one unit list and no data).",
            metrics.client_requests.1.clone(),
        );
        registry.register(
            "confighub_source_watch_errors",
            "Failures of the ConfigHubRepository watch (retried with backoff); while it fails, spec changes go unseen.",
            metrics.watch_errors.clone(),
        );
        metrics
    }

    /// Drops the series of a deleted repository, so repositories coming and going do not grow the
    /// metrics without bound (its failure counters, labelled by reason too, stay).
    pub fn forget(&self, labels: &ObjectLabels) {
        self.reconcile_duration.remove(labels);
        self.artifacts_stored.remove(labels);
        self.builds_skipped.remove(labels);
    }
}
