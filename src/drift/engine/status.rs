//! The repository's `Drifted` condition, owned by the drift engine alone: applied server-side under
//! [`DRIFT_MANAGER`] with nothing but that one condition, so the source reconciler (which owns every other
//! condition under its own manager) and the engine never overwrite each other.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use kube::runtime::reflector::ObjectRef;

use super::{DriftEngine, Repo, RepoKey};
use crate::api::ConfigHubRepository;
use crate::api::conditions::{
    DRIFTED, REASON_DETECTION_UNAVAILABLE, REASON_DRIFT_DETECTED, REASON_NO_DRIFT_DETECTED,
    REASON_RECORD_STORE_UNAVAILABLE,
};
use crate::drift::blind::KindId;
use crate::drift::inventory::{entries, external_artifact_source};
use crate::drift::{DriftRecord, RecordStatus};
use crate::wire::DRIFT_MANAGER;

/// What the engine knows about one repository's objects, reduced to a condition. Pure.
pub(super) fn drifted_condition(
    previous: Option<&Condition>,
    drifted: usize,
    worst: Option<&str>,
    blind: Option<&str>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let unseen = |b: &str| format!("drift of these kinds cannot be detected: {b}");
    let (status, reason, message) = match (drifted, blind) {
        (0, None) => (
            "False",
            REASON_NO_DRIFT_DETECTED,
            "no drift from the desired state".to_string(),
        ),
        // Known drift stays True (it is true); the kinds not seen are named beside it.
        (n, blind) if n > 0 => {
            let mut message = format!(
                "{n} object(s) drifted from the desired state; worst severity {}",
                worst.unwrap_or("Unknown")
            );
            if let Some(b) = blind {
                message.push_str("; ");
                message.push_str(&unseen(b));
            }
            ("True", REASON_DRIFT_DETECTED, message)
        }
        (_, Some(b)) => ("Unknown", REASON_DETECTION_UNAVAILABLE, unseen(b)),
        _ => unreachable!("every (count, blind) pair is matched above"),
    };
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    Condition {
        type_: DRIFTED.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// `Drifted=Unknown` while the record database cannot be reached: neither "no drift" nor the last count
/// can be claimed. Pure.
pub(super) fn store_unavailable_condition(
    previous: Option<&Condition>,
    cause: &str,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let last_transition_time = previous
        .filter(|c| c.status == "Unknown")
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    Condition {
        type_: DRIFTED.to_string(),
        status: "Unknown".to_string(),
        reason: REASON_RECORD_STORE_UNAVAILABLE.to_string(),
        message: format!("drift cannot be recorded or read back: {cause}"),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether writing `next` over `previous` would change anything a reader sees.
fn same(previous: Option<&Condition>, next: &Condition) -> bool {
    previous.is_some_and(|p| {
        p.status == next.status
            && p.reason == next.reason
            && p.message == next.message
            && p.observed_generation == next.observed_generation
    })
}

impl DriftEngine {
    /// The managed kinds of a repository: every kind in the inventories of the Kustomizations that apply
    /// its ExternalArtifact.
    pub(super) fn kinds_of(&self, repo: &RepoKey) -> BTreeSet<KindId> {
        self.kustomization_store
            .state()
            .iter()
            .filter_map(|ks| {
                let value = serde_json::to_value(&**ks).unwrap_or(Value::Null);
                (external_artifact_source(&value).as_ref() == Some(repo)).then(|| entries(&value))
            })
            .flatten()
            .map(|e| KindId::new(e.group, e.kind))
            .collect()
    }

    /// Kustomizations of ours whose inventory has `kind`.
    pub(super) fn kustomizations_with_kind(
        &self,
        kind: &KindId,
    ) -> Vec<kube::runtime::reflector::ObjectRef<kube::api::DynamicObject>> {
        self.kustomization_store
            .state()
            .iter()
            .filter(|ks| {
                let value = serde_json::to_value(&***ks).unwrap_or(Value::Null);
                external_artifact_source(&value).is_some()
                    && entries(&value)
                        .iter()
                        .any(|e| e.group == kind.group && e.kind == kind.kind)
            })
            .map(|ks| {
                kube::runtime::reflector::ObjectRef::from_obj_with(
                    &**ks,
                    super::kustomization_resource(),
                )
            })
            .collect()
    }

    /// Repositories one of whose managed kinds is `kind`.
    pub(super) fn repos_with_kind(&self, kind: &KindId) -> Vec<std::sync::Arc<Repo>> {
        self.repos
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(key, _)| self.kinds_of(key).contains(kind))
            .map(|(_, repo)| std::sync::Arc::clone(repo))
            .collect()
    }

    /// Sets the repository's `Drifted` condition from its active, actionable records and the managed
    /// kinds the engine cannot see.
    pub(super) async fn update_drifted_condition(&self, repo: &Repo) {
        let key = (
            repo.chr.namespace().unwrap_or_default(),
            repo.chr.name_any(),
        );
        let records = match self.try_active_records().await {
            Ok(records) => Ok(records),
            Err(err) if err.is_unavailable() => Err(err.to_string()),
            Err(_) => Ok(Vec::new()),
        };
        let active: Vec<DriftRecord> = records
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                r.status == RecordStatus::Active
                    && !r.expected
                    && r.repository
                        .as_ref()
                        .is_some_and(|o| o.namespace == key.0 && o.name == key.1)
            })
            .collect();
        // The repository's kinds come from every Kustomization in the store: only worth working out
        // while some kind is blind (the common case has none).
        let anything_blind = !self
            .blindness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        let blind = if anything_blind {
            let kinds = self.kinds_of(&key);
            self.blindness
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .describe(&kinds)
        } else {
            None
        };
        let worst = active
            .iter()
            .map(|r| r.severity)
            .max()
            .map(|s| s.to_string());
        let next_for = |current: &ConfigHubRepository| {
            let previous = current
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == DRIFTED));
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let next = match &records {
                Err(cause) => {
                    store_unavailable_condition(previous, cause, current.metadata.generation, now)
                }
                Ok(_) => drifted_condition(
                    previous,
                    active.len(),
                    worst.as_deref(),
                    blind.as_deref(),
                    current.metadata.generation,
                    now,
                ),
            };
            (same(previous, &next), next)
        };
        // The store's copy says nothing changed, and this process's last write (if any) agrees: no read
        // back (at 1,000 repositories, a GET per repository per interval). The store may lag the last
        // write by a moment, so a store that agrees with the wanted condition while the last write did
        // not is read back, as is any change.
        let stored = self
            .repository_store
            .get(&ObjectRef::new(&key.1).within(&key.0));
        if let Some(stored) = stored
            && let (true, next) = next_for(&stored)
        {
            let applied = self
                .drifted_applied
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if applied.get(&key).is_none_or(|last| same(Some(last), &next)) {
                return;
            }
        }
        let api: Api<ConfigHubRepository> = Api::namespaced(self.client.clone(), &key.0);
        // Read back, not from the store: the condition must be compared with what is there now.
        let Ok(current) = api.get(&key.1).await else {
            return;
        };
        let (unchanged, next) = next_for(&current);
        if unchanged {
            return;
        }
        match apply_drifted(&api, &key.1, next.clone()).await {
            Ok(()) => {
                self.drifted_applied
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, next);
            }
            Err(err) => {
                tracing::warn!(namespace = %key.0, name = %key.1, error = %err, "drift: cannot update the Drifted condition");
            }
        }
    }
}

/// Applies `condition` as the repository's `Drifted` condition under the drift engine's field manager,
/// touching nothing else in the status.
pub async fn apply_drifted(
    api: &Api<ConfigHubRepository>,
    name: &str,
    condition: Condition,
) -> kube::Result<()> {
    let patch = json!({
        "apiVersion": <ConfigHubRepository as kube::Resource>::api_version(&()),
        "kind": <ConfigHubRepository as kube::Resource>::kind(&()),
        "status": {"conditions": [condition]},
    });
    let params = PatchParams::apply(DRIFT_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn drift_blindness_and_calm_each_have_their_status() {
        let clean = drifted_condition(None, 0, None, None, Some(1), at(1));
        assert_eq!(
            (clean.status.as_str(), clean.reason.as_str()),
            ("False", REASON_NO_DRIFT_DETECTED)
        );
        let blind = drifted_condition(
            Some(&clean),
            0,
            None,
            Some("Deployment.apps (list, watch: Forbidden)"),
            Some(1),
            at(2),
        );
        assert_eq!(
            (blind.status.as_str(), blind.reason.as_str()),
            ("Unknown", REASON_DETECTION_UNAVAILABLE)
        );
        assert!(
            blind
                .message
                .contains("Deployment.apps (list, watch: Forbidden)")
        );
        assert_eq!(blind.last_transition_time, at(2));
        // Known drift is not hidden by blindness elsewhere.
        let both = drifted_condition(
            Some(&blind),
            2,
            Some("High"),
            Some("ConfigMap (patch: Forbidden)"),
            Some(1),
            at(3),
        );
        assert_eq!(both.status, "True");
        assert!(both.message.contains("2 object(s)") && both.message.contains("ConfigMap"));
        // The transition time moves only with the status.
        let again = drifted_condition(Some(&both), 1, Some("Low"), None, Some(1), at(9));
        assert_eq!(again.last_transition_time, at(3));
        assert!(!same(Some(&both), &again));
        assert!(same(Some(&again), &again.clone()));
        // An unreachable record store is no "no drift".
        let down = store_unavailable_condition(Some(&again), "connection refused", Some(1), at(10));
        assert_eq!(
            (down.status.as_str(), down.reason.as_str()),
            ("Unknown", REASON_RECORD_STORE_UNAVAILABLE)
        );
        assert!(down.message.contains("connection refused"));
        assert_eq!(down.last_transition_time, at(10));
    }
}
