//! What every reconcile shares: the Kubernetes client, the event recorder, metrics, storage, the unit data
//! cache and the ConfigHub connections (one client per origin and credentials, resolved spaces).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::cache::UnitDataCache;
use super::metrics::SourceMetrics;
use crate::api::{Artifact, ConfigHubRepository};
use crate::artifact::BuiltArtifact;
use crate::artifact::storage::Storage;
use crate::confighub;
use crate::connection::Connections;
use crate::notification::Notifier;

/// A repository's last build: the fingerprint of its inputs and the result (bytes dropped).
type LastBuild = ([u8; 32], BuiltArtifact);

/// The default of `--confighub-concurrent-requests`: the reconciles (`--concurrent`, 4) each with a
/// unit list or bulk read in flight, and room for the drift engine's calls.
pub const DEFAULT_CONFIGHUB_CONCURRENT_REQUESTS: usize = 8;

#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Only watch this namespace (all when `None`).
    pub watch_namespace: Option<String>,
    /// Only watch repositories matching this label selector (all when `None`): Flux's sharding.
    pub label_selector: Option<String>,
    /// Reconciles running at once.
    pub concurrent: u16,
    /// Accepted for Flux parity; a ConfigHubRepository only ever references its own namespace.
    pub no_cross_namespace_refs: bool,
    /// Older artifacts kept per repository besides the current one.
    pub artifacts_to_keep: usize,
    /// ConfigHub requests in flight at once, across every repository, the reconciler and the drift
    /// engine (`--confighub-concurrent-requests`).
    pub confighub_concurrent_requests: usize,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            watch_namespace: None,
            label_selector: None,
            concurrent: 4,
            no_cross_namespace_refs: false,
            artifacts_to_keep: 2,
            confighub_concurrent_requests: DEFAULT_CONFIGHUB_CONCURRENT_REQUESTS,
        }
    }
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    /// Forwards events to Flux's notification-controller when `--events-addr` is set.
    notifier: Option<Notifier>,
    pub metrics: SourceMetrics,
    pub storage: Storage,
    pub cache: UnitDataCache,
    pub options: ControllerOptions,
    /// ConfigHub clients per (origin, credentials) and resolved spaces by (origin, slug-or-UUID), so a
    /// steady-state reconcile makes one request; shared with the drift engine.
    pub connections: Connections,
    /// The last build of each repository (namespace, name): its input fingerprint and result (without
    /// the archive bytes, which are in storage), so an unchanged space is not rebuilt every interval.
    last_builds: Mutex<HashMap<(String, String), LastBuild>>,
    /// The artifact each repository's ExternalArtifact was last written with by this process, so an
    /// unchanged one is not written again every interval.
    published: Mutex<HashMap<(String, String), Artifact>>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: SourceMetrics,
        storage: Storage,
        cache: UnitDataCache,
        options: ControllerOptions,
        notifier: Option<Notifier>,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: "confighub-source-controller".into(),
            instance: None,
        };
        let observer = Arc::new(metrics.client_requests.clone());
        let connections = Connections::new(Some(observer), options.confighub_concurrent_requests);
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            notifier,
            client,
            metrics,
            storage,
            cache,
            options,
            connections,
            last_builds: Mutex::new(HashMap::new()),
            published: Mutex::new(HashMap::new()),
        })
    }

    /// Remembers (`Some`) or forgets (`None`, e.g. after a 404) a resolved space.
    pub fn remember_space(&self, origin: &str, space_ref: &str, space: Option<confighub::Space>) {
        self.connections.remember_space(origin, space_ref, space)
    }

    /// The last build of `key` if it had exactly these inputs.
    pub fn unchanged_build(
        &self,
        key: &(String, String),
        inputs: &[u8; 32],
    ) -> Option<BuiltArtifact> {
        let builds = self.last_builds.lock().unwrap_or_else(|p| p.into_inner());
        builds
            .get(key)
            .filter(|(known, _)| known == inputs)
            .map(|(_, built)| built.clone())
    }

    /// Remembers a build (dropping its bytes), or forgets the repository's (`None`, e.g. on deletion).
    pub fn remember_build(&self, key: (String, String), build: Option<([u8; 32], &BuiltArtifact)>) {
        let mut builds = self.last_builds.lock().unwrap_or_else(|p| p.into_inner());
        match build {
            Some((inputs, built)) => {
                let without_bytes = BuiltArtifact {
                    bytes: Vec::new(),
                    ..built.clone()
                };
                builds.insert(key, (inputs, without_bytes));
            }
            None => {
                builds.remove(&key);
            }
        }
    }

    /// Whether this process last wrote `key`'s ExternalArtifact with exactly `artifact`.
    pub fn is_published(&self, key: &(String, String), artifact: &Artifact) -> bool {
        let published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        published.get(key) == Some(artifact)
    }

    /// Remembers the artifact written to `key`'s ExternalArtifact, or forgets it (`None`: the
    /// repository or its ExternalArtifact was deleted).
    pub fn remember_published(&self, key: (String, String), artifact: Option<Artifact>) {
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        match artifact {
            Some(artifact) => published.insert(key, artifact),
            None => published.remove(&key),
        };
    }

    /// Publishes a Kubernetes Event on `chr` (and forwards it to notification-controller, about the
    /// repository's ExternalArtifact at its stored revision); failing to record an event never fails a
    /// reconcile.
    pub async fn publish_event(
        &self,
        chr: &ConfigHubRepository,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        self.publish_event_at(chr, type_, reason, note, None).await
    }

    /// [`Context::publish_event`] for an event about `revision` (e.g. the artifact just stored, before
    /// the status says so).
    pub async fn publish_event_at(
        &self,
        chr: &ConfigHubRepository,
        type_: EventType,
        reason: &str,
        note: &str,
        revision: Option<&str>,
    ) {
        if let Some(notifier) = &self.notifier {
            let warning = matches!(type_, EventType::Warning);
            notifier.notify(chr, warning, reason, note, revision);
        }
        let mut note = note.to_string();
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &chr.object_ref(&())).await {
            tracing::debug!(error = %err, "could not publish event");
        }
    }
}
