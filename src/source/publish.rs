//! Publishing: the ConfigHubRepository status and the ExternalArtifact kustomize-controller reads, both by
//! server-side apply so the controller owns exactly the fields it writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::api::{Artifact, ConfigHubRepository, ExternalArtifact};

/// Field manager of the source reconciler (the drift engine has its own for `Drifted`).
pub use crate::wire::SOURCE_MANAGER as FIELD_MANAGER;

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Creates or updates the ExternalArtifact named like `chr`, owned by it and pointing back at it, with
/// `artifact` in its status and Ready=True, as Flux's RFC-0012 describes.
pub async fn apply_external_artifact(
    client: &Client,
    chr: &ConfigHubRepository,
    artifact: &Artifact,
) -> kube::Result<()> {
    let namespace = chr.namespace().unwrap_or_default();
    let name = chr.name_any();
    let api: Api<ExternalArtifact> = Api::namespaced(client.clone(), &namespace);
    let owner = chr.controller_owner_ref(&());
    let object = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "ExternalArtifact",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
            "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
        },
        "spec": {
            "sourceRef": {
                "apiVersion": ConfigHubRepository::api_version(&()),
                "kind": ConfigHubRepository::kind(&()),
                "name": name,
                "namespace": namespace,
            }
        }
    });
    api.patch(&name, &apply_params(), &Patch::Apply(&object))
        .await?;
    let status = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "ExternalArtifact",
        "status": {
            "artifact": artifact,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": format!("stored artifact for revision '{}'", artifact.revision),
                "lastTransitionTime": artifact.last_update_time,
            }]
        }
    });
    api.patch_status(&name, &apply_params(), &Patch::Apply(&status))
        .await?;
    Ok(())
}

/// Deletes the ExternalArtifact of `chr` (there may be no garbage collector to follow the owner
/// reference, and the artifact it points at is going away).
pub async fn delete_external_artifact(
    client: &Client,
    chr: &ConfigHubRepository,
) -> kube::Result<()> {
    let api: Api<ExternalArtifact> =
        Api::namespaced(client.clone(), &chr.namespace().unwrap_or_default());
    match api.delete(&chr.name_any(), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err),
    }
}

/// The status fields this controller owns on a ConfigHubRepository.
#[derive(Debug, Clone, Default)]
pub struct StatusUpdate {
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
    pub artifact: Option<Artifact>,
    pub last_handled_reconcile_at: Option<String>,
}

/// Whether `chr`'s status already says what `update` would write (the source reconciler's conditions,
/// in any order; `Drifted` is the drift engine's), so an unchanged repository costs no write.
pub fn status_unchanged(chr: &ConfigHubRepository, update: &StatusUpdate) -> bool {
    let Some(status) = &chr.status else {
        return false;
    };
    fn sorted(mut conditions: Vec<&Condition>) -> Vec<&Condition> {
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        conditions
    }
    let ours = sorted(
        status
            .conditions
            .iter()
            .filter(|c| c.type_ != crate::api::conditions::DRIFTED)
            .collect(),
    );
    status.observed_generation == update.observed_generation
        && status.artifact == update.artifact
        && status.last_handled_reconcile_at == update.last_handled_reconcile_at
        && ours == sorted(update.conditions.iter().collect())
}

pub async fn apply_status(
    client: &Client,
    chr: &ConfigHubRepository,
    update: &StatusUpdate,
) -> kube::Result<()> {
    let api: Api<ConfigHubRepository> =
        Api::namespaced(client.clone(), &chr.namespace().unwrap_or_default());
    let mut status = serde_json::Map::new();
    if let Some(generation) = update.observed_generation {
        status.insert("observedGeneration".into(), json!(generation));
    }
    status.insert("conditions".into(), json!(update.conditions));
    if let Some(artifact) = &update.artifact {
        status.insert("artifact".into(), json!(artifact));
    }
    if let Some(at) = &update.last_handled_reconcile_at {
        status.insert("lastHandledReconcileAt".into(), json!(at));
    }
    let patch = json!({
        "apiVersion": ConfigHubRepository::api_version(&()),
        "kind": ConfigHubRepository::kind(&()),
        "status": status,
    });
    api.patch_status(&chr.name_any(), &apply_params(), &Patch::Apply(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConfigHubRepositoryStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "Succeeded".into(),
            message: "stored artifact for revision 'head@sha256:aa'".into(),
            observed_generation: Some(1),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn an_unchanged_status_is_not_written_again() {
        let update = StatusUpdate {
            observed_generation: Some(1),
            conditions: vec![
                condition("Ready", "True"),
                condition("ArtifactInStorage", "True"),
            ],
            artifact: Some(Artifact {
                digest: "sha256:aa".into(),
                ..Artifact::default()
            }),
            last_handled_reconcile_at: None,
        };
        let mut chr: ConfigHubRepository = serde_json::from_value(json!({
            "apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {"url": "http://127.0.0.1:9", "space": "s", "interval": "1m"}
        }))
        .unwrap();
        assert!(!status_unchanged(&chr, &update), "no status yet");
        chr.status = Some(ConfigHubRepositoryStatus {
            observed_generation: Some(1),
            // Another order, and the drift engine's condition beside ours.
            conditions: vec![
                condition("ArtifactInStorage", "True"),
                condition("Drifted", "False"),
                condition("Ready", "True"),
            ],
            artifact: update.artifact.clone(),
            last_handled_reconcile_at: None,
        });
        assert!(status_unchanged(&chr, &update));
        let mut failed = update.clone();
        failed.conditions[0] = condition("Ready", "False");
        assert!(!status_unchanged(&chr, &failed));
        let mut requested = update.clone();
        requested.last_handled_reconcile_at = Some("now".into());
        assert!(!status_unchanged(&chr, &requested));
        let mut recovered = update.clone();
        recovered.conditions.pop();
        assert!(!status_unchanged(&chr, &recovered), "a condition to remove");
    }
}
