//! Reading Flux back: kustomize-controller's events list what it applied, one object per line,
//! `<Kind>/<namespace>/<name> <action>` (`<Kind>/<name>` for cluster-scoped objects, as
//! fluxcd/pkg/ssa formats change sets). A `configured` or `created` line while the revision did not
//! change is drift Flux just corrected: a changed object or a deleted one it recreated.

use super::types::{DriftType, ObjectKey};

/// Metadata key of kustomize-controller events carrying the applied revision.
pub const REVISION_METADATA: &str = "kustomize.toolkit.fluxcd.io/revision";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeLine {
    pub key: ObjectKey,
    /// `created`, `configured`, `unchanged`, `deleted`, ...
    pub action: String,
}

/// The change lines of an event message; other lines are skipped.
pub fn parse_change_lines(message: &str) -> Vec<ChangeLine> {
    message
        .lines()
        .filter_map(|line| {
            let (subject, action) = line.trim().rsplit_once(' ')?;
            let parts: Vec<&str> = subject.split('/').collect();
            let key = match parts.as_slice() {
                [kind, name] => ObjectKey::new(*kind, "", *name),
                [kind, ns, name] => ObjectKey::new(*kind, *ns, *name),
                _ => return None,
            };
            let valid = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
            (valid(&key.kind) && valid(&key.name) && valid(action)).then(|| ChangeLine {
                key,
                action: action.to_string(),
            })
        })
        .collect()
}

/// Objects whose drift Flux corrected in an event for `event_revision`, given the revision applied
/// before it: nothing when the revision changed (that was a deployment, not drift).
pub fn reverted_drift(
    message: &str,
    event_revision: Option<&str>,
    previous_revision: Option<&str>,
) -> Vec<(ObjectKey, DriftType)> {
    match (event_revision, previous_revision) {
        (Some(now), Some(before)) if now == before => {}
        _ => return Vec::new(),
    }
    parse_change_lines(message)
        .into_iter()
        .filter_map(|l| match l.action.as_str() {
            "configured" => Some((l.key, DriftType::Other)),
            "created" => Some((l.key, DriftType::Deleted)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "Deployment/apps/web configured\nService/apps/web unchanged\nClusterRole/viewer created\nnot a change line\nConfigMap/apps/old deleted";

    #[test]
    fn parses_namespaced_and_cluster_scoped_lines() {
        let lines = parse_change_lines(MESSAGE);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            ChangeLine {
                key: ObjectKey::new("Deployment", "apps", "web"),
                action: "configured".into()
            }
        );
        assert_eq!(lines[2].key, ObjectKey::new("ClusterRole", "", "viewer"));
    }

    #[test]
    fn only_same_revision_events_are_drift() {
        let rev = Some("head@sha256:abc");
        assert_eq!(
            reverted_drift(MESSAGE, rev, rev),
            vec![
                (
                    ObjectKey::new("Deployment", "apps", "web"),
                    DriftType::Other
                ),
                (
                    ObjectKey::new("ClusterRole", "", "viewer"),
                    DriftType::Deleted
                )
            ]
        );
        assert!(reverted_drift(MESSAGE, rev, Some("head@sha256:def")).is_empty());
        assert!(reverted_drift(MESSAGE, rev, None).is_empty());
    }
}
