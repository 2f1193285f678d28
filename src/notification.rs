//! Forwards the controller's events to Flux's notification-controller (`--events-addr`), in Flux's event
//! format (`github.com/fluxcd/pkg/apis/event/v1beta1.Event`), so Flux Alerts and Providers route them.
//!
//! The event is about the repository's ExternalArtifact, not the ConfigHubRepository: an Alert's
//! `spec.eventSources[].kind` is an enum of Flux kinds that includes `ExternalArtifact` but no
//! third-party kind, so an event about a ConfigHubRepository could never match an Alert. Kubernetes
//! Events stay on the ConfigHubRepository. Delivery never blocks a reconcile: events go through a
//! bounded queue to one sender task that retries like Flux's recorder (5 s timeout, up to 4 retries on
//! connection errors and 5xx, none on 429, which notification-controller answers to duplicates).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use kube::{Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::api::{ConfigHubRepository, ExternalArtifact};

/// Annotations with this prefix on a repository are copied into its events' metadata (as Flux's
/// recorder does), so users can add their own fields to notifications.
const EVENT_ANNOTATION_PREFIX: &str = "event.toolkit.fluxcd.io/";
/// notification-controller caps messages at this many bytes.
const MAX_MESSAGE: usize = 39_000;
const QUEUE: usize = 1024;
const RETRIES: u32 = 4;
const LOG_BACKOFF_MIN: Duration = Duration::from_secs(60);
const LOG_BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// `corev1.ObjectReference` as notification-controller reads it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub api_version: String,
}

/// Flux's `Event` (event.toolkit.fluxcd.io/v1beta1), field for field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    pub involved_object: ObjectReference,
    /// `info` or `error`.
    pub severity: &'static str,
    /// RFC 3339 in seconds, as `metav1.Time` marshals.
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// The Flux event for an event on `chr`: about its ExternalArtifact, with the artifact revision under
/// `source.toolkit.fluxcd.io/revision` (notification-controller keeps only metadata keys prefixed with
/// the involved object's group) and the repository's `event.toolkit.fluxcd.io/*` annotations.
pub fn flux_event(
    chr: &ConfigHubRepository,
    warning: bool,
    reason: &str,
    message: &str,
    revision: Option<&str>,
    now: DateTime<Utc>,
    instance: &str,
) -> FluxEvent {
    let group = ExternalArtifact::group(&());
    let mut metadata: BTreeMap<String, String> = chr
        .annotations()
        .iter()
        .filter(|(k, _)| k.starts_with(EVENT_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let stored = chr
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.as_str());
    if let Some(revision) = revision.or(stored) {
        metadata.insert(format!("{group}/revision"), revision.to_string());
    }
    let mut message = message.to_string();
    if message.is_empty() {
        message = reason.to_string();
    }
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    FluxEvent {
        involved_object: ObjectReference {
            kind: ExternalArtifact::kind(&()).into_owned(),
            namespace: chr.namespace().unwrap_or_default(),
            name: chr.name_any(),
            api_version: ExternalArtifact::api_version(&()).into_owned(),
        },
        severity: if warning { "error" } else { "info" },
        timestamp: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        message,
        reason: reason.to_string(),
        metadata,
        reporting_controller: crate::wire::SOURCE_MANAGER.to_string(),
        reporting_instance: instance.to_string(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Hands events to the sender task; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<FluxEvent>,
    /// `reportingInstance`: the pod's name.
    instance: String,
    outcomes: Family<ResultLabels, Counter>,
}

impl Notifier {
    /// Starts the sender task posting to `url`, and registers
    /// `confighub_notification_events_total{result}` (sent, duplicate, refused, failed, dropped).
    pub fn start(url: url::Url, instance: String, registry: &mut Registry) -> anyhow::Result<Self> {
        Self::start_with(url, instance, registry, Duration::from_secs(1))
    }

    /// [`Notifier::start`] with the first retry after `retry_base` (doubling, at most 30 s).
    fn start_with(
        url: url::Url,
        instance: String,
        registry: &mut Registry,
        retry_base: Duration,
    ) -> anyhow::Result<Self> {
        let outcomes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "confighub_notification_events",
            "Events posted to Flux's notification-controller, by result",
            outcomes.clone(),
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(client, url, retry_base, rx, outcomes.clone()));
        Ok(Self {
            tx,
            instance,
            outcomes,
        })
    }

    /// Forwards an event on `chr` (see [`flux_event`]).
    pub fn notify(
        &self,
        chr: &ConfigHubRepository,
        warning: bool,
        reason: &str,
        message: &str,
        revision: Option<&str>,
    ) {
        let event = flux_event(
            chr,
            warning,
            reason,
            message,
            revision,
            Utc::now(),
            &self.instance,
        );
        self.send(event);
    }

    /// Queues an event; when the queue is full (notification-controller down for long) it is dropped
    /// and counted, never waited for.
    pub fn send(&self, event: FluxEvent) {
        if self.tx.try_send(event).is_err() {
            self.count("dropped");
        }
    }

    fn count(&self, result: &'static str) {
        self.outcomes.get_or_create(&ResultLabels { result }).inc();
    }
}

/// How one post ended.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    Sent,
    /// 429: notification-controller already has this event (it de-duplicates for a while).
    Duplicate,
    /// Another 4xx: retrying cannot help.
    Refused(u16),
    /// Connection errors and 5xx after every retry.
    Failed(String),
}

async fn post(
    client: &reqwest::Client,
    url: &url::Url,
    retry_base: Duration,
    event: &FluxEvent,
) -> Delivery {
    let mut last = String::new();
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            tokio::time::sleep((retry_base * (1 << (attempt - 1))).min(Duration::from_secs(30)))
                .await;
        }
        match client.post(url.clone()).json(event).send().await {
            Ok(resp) if resp.status().is_success() => return Delivery::Sent,
            Ok(resp) if resp.status().as_u16() == 429 => return Delivery::Duplicate,
            Ok(resp) if resp.status().is_client_error() => {
                return Delivery::Refused(resp.status().as_u16());
            }
            Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
            // reqwest's error text names the URL, which carries no secret here.
            Err(err) => last = err.to_string(),
        }
    }
    Delivery::Failed(last)
}

async fn deliver(
    client: reqwest::Client,
    url: url::Url,
    retry_base: Duration,
    mut rx: mpsc::Receiver<FluxEvent>,
    outcomes: Family<ResultLabels, Counter>,
) {
    let mut failing = false;
    let mut next_log = tokio::time::Instant::now();
    let mut backoff = LOG_BACKOFF_MIN;
    while let Some(event) = rx.recv().await {
        let result = post(&client, &url, retry_base, &event).await;
        let label = match &result {
            Delivery::Sent => "sent",
            Delivery::Duplicate => "duplicate",
            Delivery::Refused(_) => "refused",
            Delivery::Failed(_) => "failed",
        };
        outcomes
            .get_or_create(&ResultLabels { result: label })
            .inc();
        match result {
            Delivery::Sent | Delivery::Duplicate => {
                if failing {
                    tracing::info!(%url, "events reach notification-controller again");
                    failing = false;
                    backoff = LOG_BACKOFF_MIN;
                }
            }
            Delivery::Refused(code) => {
                tracing::warn!(%url, code, reason = %event.reason, "notification-controller refused an event");
            }
            Delivery::Failed(cause) => {
                let now = tokio::time::Instant::now();
                if !failing || now >= next_log {
                    tracing::warn!(%url, %cause, "cannot post events to notification-controller; counting them in confighub_notification_events_total{{result=\"failed\"}}");
                    next_log = now + backoff;
                    backoff = (backoff * 2).min(LOG_BACKOFF_MAX);
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;
