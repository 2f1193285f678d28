//! Remediation by mode: Revert asks kustomize-controller to re-apply (again if drift outlives a request);
//! Propose writes the episode's fix unit (`propose.rs`) when its content changes, or when it is missing.

use chrono::Utc;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::*;

impl DriftEngine {
    pub(super) async fn remediate(
        &self,
        repo: &Repo,
        ks: &RepoKey,
        record: &DriftRecord,
        compared: &Value,
        transition: Transition,
    ) {
        let Some(primary) = record.primary_item() else {
            return;
        };
        let mode = effective_mode(
            repo.chr.spec.drift.as_ref(),
            primary.drift_type,
            primary.severity,
        );
        match mode {
            DriftMode::Report => {}
            DriftMode::Revert => {
                let due = {
                    let mut requests = self
                        .revert_requests
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let now = std::time::Instant::now();
                    let due = revert_due(transition, requests.get(&record.id).copied(), now);
                    if due {
                        requests.insert(record.id.clone(), now);
                    }
                    due
                };
                if due {
                    self.request_flux_reconcile(ks, &record.id).await;
                }
            }
            DriftMode::Propose => {
                let refused = self
                    .fix_unit_refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&(record.id.clone(), record.episode));
                if fix_unit_due(transition, record.fix_unit.is_some(), refused) {
                    self.write_fix_unit(repo, record, compared).await
                }
            }
        }
    }

    /// Asks kustomize-controller to reconcile now (`reconcile.fluxcd.io/requestedAt`), which restores
    /// the object; the watch then sees the restore and resolves the record.
    pub(super) async fn request_flux_reconcile(&self, ks: &RepoKey, id: &str) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &ks.0, &kustomization_resource());
        let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": Utc::now().to_rfc3339()}}});
        match api
            .patch(&ks.1, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(%id, kustomization = %ks.1, "drift: requested a Flux reconcile to revert")
            }
            Err(err) => tracing::warn!(%id, error = %err, "drift: cannot request a Flux reconcile"),
        }
    }
}

/// Whether the episode's fix unit must be written (or rewritten): it follows the episode's content, so when
/// an episode starts or its drift changes. Seeing the same drift again changes nothing, unless the episode
/// has no fix unit yet (its writer failed, or died in a leader hand-over) and this instance has not been
/// refused one for it.
fn fix_unit_due(transition: Transition, has_fix_unit: bool, refused_here: bool) -> bool {
    transition != Transition::Unchanged || (!has_fix_unit && !refused_here)
}

/// Whether to ask Flux (again) to revert: always when an episode starts; otherwise when no request is
/// known (e.g. after a restart) or the last one is [`REVERT_RETRY`] old and the drift is still there.
fn revert_due(
    transition: Transition,
    last_request: Option<std::time::Instant>,
    now: std::time::Instant,
) -> bool {
    transition == Transition::Started
        || last_request.is_none_or(|t| now.duration_since(t) >= REVERT_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fix_unit_follows_the_episode_not_every_sighting() {
        assert!(fix_unit_due(Transition::Started, false, false));
        assert!(fix_unit_due(Transition::Updated, true, false));
        assert!(!fix_unit_due(Transition::Unchanged, true, false));
        // A missing fix unit (a failed write, or a leader that died mid-write) is written at the next
        // sighting, unless this instance was refused one for the episode (no origin unit, say).
        assert!(fix_unit_due(Transition::Unchanged, false, false));
        assert!(!fix_unit_due(Transition::Unchanged, false, true));
        assert!(fix_unit_due(Transition::Updated, false, true));
    }

    #[test]
    fn revert_is_requested_on_start_and_again_only_when_drift_outlives_the_retry() {
        let now = std::time::Instant::now();
        let just = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let long_ago = now.checked_sub(REVERT_RETRY).unwrap_or(now);
        assert!(revert_due(Transition::Started, Some(just), now));
        // After a restart nothing is known: the drift that is still there gets a request.
        assert!(revert_due(Transition::Unchanged, None, now));
        assert!(!revert_due(Transition::Unchanged, Some(just), now));
        assert!(!revert_due(Transition::Updated, Some(just), now));
        assert!(revert_due(Transition::Unchanged, Some(long_ago), now));
    }
}
