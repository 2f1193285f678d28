//! Kubernetes API types: the `ConfigHubRepository` CRD this project owns, and the Flux types it writes
//! (`ExternalArtifact`) or reads (`Kustomization`).

pub mod artifact;
pub mod conditions;
pub mod drift;
pub mod external_artifact;
pub mod repository;

pub use artifact::Artifact;
pub use external_artifact::{ExternalArtifact, ExternalArtifactSpec, ExternalArtifactStatus};
pub use repository::{
    ConfigHubRepository, ConfigHubRepositorySpec, ConfigHubRepositoryStatus, DriftMode,
    DriftOverride, DriftSpec, RevisionMode, SecretReference,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD this project owns, in the order `crds` prints them.
pub fn owned_crds() -> Vec<CustomResourceDefinition> {
    vec![ConfigHubRepository::crd()]
}

/// The owned CRDs as one multi-document YAML stream, exactly what `crds` prints and `crds/` holds.
pub fn owned_crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in owned_crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` is what users and `hack/dev-cluster.sh` install; it must be exactly what the binary prints.
    #[test]
    fn committed_crds_match_the_generated_ones() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/source.confighub.com_confighubrepositories.yaml"
        );
        let committed = std::fs::read_to_string(path).expect("crds/ holds the generated CRD");
        let generated = owned_crds_yaml().unwrap();
        assert!(
            committed == generated,
            "crds/ is stale: run `cargo run -- crds > {path}`"
        );
    }

    #[test]
    fn revision_prefix_names_the_mode() {
        assert_eq!(RevisionMode::Head.revision_prefix(), "head");
        assert_eq!(RevisionMode::LastReleased.revision_prefix(), "released");
    }
}
