//! Drift metrics, registered into the controller's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::record::DriftRecord;
use super::store::Transition;

/// Detection latency buckets, seconds: from a watch event (10 ms) to a slow full analysis (30 s).
pub const LATENCY_BUCKETS: [f64; 11] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Processing buckets, seconds: a dry run and a compare take milliseconds.
pub const PROCESSING_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftEventLabels {
    pub r#type: String,
    pub severity: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FixUnitLabels {
    /// `created`, `refused` (Secret drift), `failed`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BlindLabels {
    pub group: String,
    pub kind: String,
    /// `discover`, `list`, `watch`, `get` or `patch` (the server-side-apply dry run).
    pub verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub group: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone)]
pub struct DriftMetrics {
    /// `confighub_drift_reconcile_errors_total{reason}`: failed reconciles of the drift controller.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// `confighub_drift_watching{group,kind}`: 1 once the watch of a managed kind has listed it and is
    /// following its changes, 0 while it cannot.
    pub watching: Family<KindLabels, Gauge>,
    /// `confighub_drift_detection_unavailable{group,kind,verb}`: 1 while the engine cannot do `verb` on a
    /// managed kind (drift of that kind goes unseen), 0 once it can again.
    pub unavailable: Family<BlindLabels, Gauge>,
    /// `confighub_drift_detection_errors_total{group,kind,verb}`: every refused or failed call behind it.
    pub blind_errors: Family<BlindLabels, Counter>,
    /// `confighub_drift_events_total{type,severity,namespace}`: new drift episodes, one per type.
    pub events: Family<DriftEventLabels, Counter>,
    /// `confighub_drift_active`: active (unresolved) drift records.
    pub active: Gauge,
    /// `confighub_drift_detection_latency_seconds`: from the triggering change (its managedFields time,
    /// which has 1 s resolution) to the stored record.
    pub detection_latency: Histogram,
    /// `confighub_drift_processing_seconds`: from the controller seeing the change (watch event or full
    /// pass) to the stored record; the controller's own share, measured with its monotonic clock.
    pub processing: Histogram,
    /// `confighub_drift_fix_units_total{result}`.
    pub fix_units: Family<FixUnitLabels, Counter>,
    /// `confighub_drift_passes_total`: completed reconciles of the drift controller (each compares every
    /// object of one Kustomization).
    pub passes: Counter,
}

impl DriftMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconcile_errors: Family::default(),
            watching: Family::default(),
            unavailable: Family::default(),
            blind_errors: Family::default(),
            events: Family::default(),
            active: Gauge::default(),
            detection_latency: Histogram::new(LATENCY_BUCKETS),
            processing: Histogram::new(PROCESSING_BUCKETS),
            fix_units: Family::default(),
            passes: Counter::default(),
        };
        registry.register(
            "confighub_drift_events",
            "Drift episodes started, by drift type, severity and namespace.",
            metrics.events.clone(),
        );
        registry.register(
            "confighub_drift_reconcile_errors",
            "Failed reconciles of the drift controller, by reason.",
            metrics.reconcile_errors.clone(),
        );
        registry.register(
            "confighub_drift_watching",
            "1 while the watch of a managed kind is listed and following changes, by kind.",
            metrics.watching.clone(),
        );
        registry.register(
            "confighub_drift_detection_unavailable",
            "1 while drift of a managed kind cannot be detected (the verb is refused or fails), by kind and verb.",
            metrics.unavailable.clone(),
        );
        registry.register(
            "confighub_drift_detection_errors",
            "Refused or failed calls that leave drift of a managed kind undetected, by kind and verb.",
            metrics.blind_errors.clone(),
        );
        registry.register(
            "confighub_drift_active",
            "Active drift records.",
            metrics.active.clone(),
        );
        registry.register(
            "confighub_drift_detection_latency_seconds",
            "Seconds from a change in the cluster to its drift record.",
            metrics.detection_latency.clone(),
        );
        registry.register(
            "confighub_drift_processing_seconds",
            "Seconds from the controller seeing a change (watch event or full pass) to the record of a new drift episode.",
            metrics.processing.clone(),
        );
        registry.register(
            "confighub_drift_fix_units",
            "Fix units written to ConfigHub, by result.",
            metrics.fix_units.clone(),
        );
        registry.register(
            "confighub_drift_passes",
            "Completed passes of the drift engine over all repositories.",
            metrics.passes.clone(),
        );
        metrics
    }

    /// Counts a newly started episode once per drift type it has (updates are not new events).
    pub fn observe(&self, transition: Transition, record: &DriftRecord) {
        if transition != Transition::Started {
            return;
        }
        for t in &record.types {
            let severity = record
                .items
                .iter()
                .filter(|i| i.drift_type == *t)
                .map(|i| i.severity)
                .max()
                .unwrap_or(record.severity);
            self.events
                .get_or_create(&DriftEventLabels {
                    r#type: t.to_string(),
                    severity: severity.to_string(),
                    namespace: record.namespace.clone(),
                })
                .inc();
        }
    }

    pub fn set_active(&self, n: u64) {
        self.active.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn fix_unit(&self, result: &str) {
        self.fix_units
            .get_or_create(&FixUnitLabels {
                result: result.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::detect::{Detection, classify_items};
    use crate::drift::record::DetectionSource;
    use crate::drift::types::{DriftItem, ObjectKey};
    use serde_json::json;

    #[test]
    fn renders_every_family() {
        let mut registry = Registry::default();
        let m = DriftMetrics::register(&mut registry);
        let key = ObjectKey::new("Deployment", "apps", "web");
        let items = vec![DriftItem {
            path: "/spec/replicas".into(),
            desired: Some(json!(1)),
            live: Some(json!(3)),
            actor: None,
        }];
        let det = Detection {
            items: classify_items(&key, items, &[]),
            key,
            source: DetectionSource::Watch,
            unit_slug: None,
            revision: None,
            repository: None,
            kustomization: None,
            detected_at: chrono::Utc::now(),
        };
        let record = DriftRecord::start(&det, 1);
        m.observe(Transition::Started, &record);
        m.observe(Transition::Updated, &record);
        m.set_active(1);
        m.detection_latency.observe(0.2);
        m.processing.observe(0.004);
        m.fix_unit("created");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(
            out.contains(
                r#"confighub_drift_events_total{type="Scaling",severity="High",namespace="apps"} 1"#
            ),
            "{out}"
        );
        assert!(out.contains("confighub_drift_active 1"));
        assert!(out.contains("confighub_drift_detection_latency_seconds_bucket{le=\"30.0\"} 1"));
        assert!(out.contains(r#"confighub_drift_fix_units_total{result="created"} 1"#));
        assert!(out.contains("confighub_drift_processing_seconds_bucket{le=\"0.005\"} 1"));
        assert!(out.contains("confighub_drift_processing_seconds_bucket{le=\"0.0025\"} 0"));
    }
}
