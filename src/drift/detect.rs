//! The pure pipeline from one desired/live pair to a [`Detection`]: diff → classify → expected.
//! This is what the controller calls after a watch event or a dry run; persisting it is [`super::store`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::classify::{classify_item, expected};
use super::diff::diff;
use super::fields::FieldOwners;
use super::types::{ClassifiedItem, DetectionSource, DriftItem, IgnoreRule, ObjectKey, ObjectRef};

use crate::wire::{
    ANNOTATION_REVISION_NUM, FLUX_NAME_LABEL as KS_NAME_LABEL,
    FLUX_NAMESPACE_LABEL as KS_NAMESPACE_LABEL, LABEL_UNIT_SLUG as UNIT_SLUG_LABEL,
};

/// Where a comparison happens: the repository's ignore rules and provenance.
#[derive(Clone, Debug)]
pub struct DetectionContext<'a> {
    pub ignore: &'a [IgnoreRule],
    pub source: DetectionSource,
    /// Overrides the `confighub.com/UnitSlug` label of the desired object.
    pub unit_slug: Option<String>,
    /// Overrides the `confighub.com/RevisionNum` annotation of the desired object.
    pub revision: Option<String>,
    pub repository: Option<ObjectRef>,
    pub at: DateTime<Utc>,
}

/// The drift found on one object at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub key: ObjectKey,
    pub items: Vec<ClassifiedItem>,
    pub source: DetectionSource,
    pub unit_slug: Option<String>,
    pub revision: Option<String>,
    pub repository: Option<ObjectRef>,
    pub kustomization: Option<ObjectRef>,
    pub detected_at: DateTime<Utc>,
}

/// Classifies items and marks the expected ones.
pub fn classify_items(
    key: &ObjectKey,
    items: Vec<DriftItem>,
    ignore: &[IgnoreRule],
) -> Vec<ClassifiedItem> {
    items
        .into_iter()
        .map(|item| {
            let (drift_type, severity) = classify_item(&key.kind, &item);
            let expected = expected(&item, ignore, &key.kind, &key.name);
            ClassifiedItem {
                item,
                drift_type,
                severity,
                expected,
            }
        })
        .collect()
}

/// Compares and classifies; `None` when there is no drift (then resolve the object's record).
pub fn detect(
    key: &ObjectKey,
    desired: &Value,
    live: Option<&Value>,
    ctx: &DetectionContext<'_>,
) -> Option<Detection> {
    let owners = live.map(FieldOwners::from_live).unwrap_or_default();
    let items = diff(desired, live, &owners);
    if items.is_empty() {
        return None;
    }
    let meta = |obj: Option<&Value>, map: &str, key: &str| {
        obj?.pointer(&format!("/metadata/{map}"))?
            .get(key)?
            .as_str()
            .map(str::to_string)
    };
    let label = |obj: Option<&Value>, key: &str| meta(obj, "labels", key);
    let kustomization = [live, Some(desired)].into_iter().find_map(|o| {
        Some(ObjectRef::new(
            label(o, KS_NAMESPACE_LABEL)?,
            label(o, KS_NAME_LABEL)?,
        ))
    });
    Some(Detection {
        key: key.clone(),
        items: classify_items(key, items, ctx.ignore),
        source: ctx.source,
        unit_slug: ctx
            .unit_slug
            .clone()
            .or_else(|| label(Some(desired), UNIT_SLUG_LABEL)),
        revision: ctx
            .revision
            .clone()
            .or_else(|| meta(Some(desired), "annotations", ANNOTATION_REVISION_NUM)),
        repository: ctx.repository.clone(),
        kustomization,
        detected_at: ctx.at,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::drift::types::{DriftType, Severity};
    use serde_json::json;

    pub(crate) fn ctx(ignore: &[IgnoreRule]) -> DetectionContext<'_> {
        DetectionContext {
            ignore,
            source: DetectionSource::Watch,
            unit_slug: None,
            revision: None,
            repository: Some(ObjectRef::new("flux-system", "apps")),
            at: DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
                .map(|t| t.to_utc())
                .unwrap(),
        }
    }

    fn pair(desired_replicas: i64, live_replicas: i64, scaler: &str) -> (Value, Value) {
        let mut desired =
            crate::drift::diff::tests::desired_deployment(desired_replicas, "nginx:1.27");
        desired["metadata"]["labels"][UNIT_SLUG_LABEL] = json!("web");
        desired["metadata"]["annotations"][ANNOTATION_REVISION_NUM] = json!("7");
        let mut live =
            crate::drift::diff::tests::live_deployment(live_replicas, "nginx:1.27", scaler);
        live["metadata"]["labels"][UNIT_SLUG_LABEL] = json!("web");
        live["metadata"]["annotations"][ANNOTATION_REVISION_NUM] = json!("7");
        (desired, live)
    }

    #[test]
    fn scaling_by_hand_is_high_and_attributed() {
        let (d, l) = pair(1, 3, "kubectl-scale");
        let key = ObjectKey::new("Deployment", "default", "web");
        let det = detect(&key, &d, Some(&l), &ctx(&[])).unwrap();
        assert_eq!(det.items.len(), 1);
        let i = &det.items[0];
        assert_eq!(
            (i.drift_type, i.severity, i.expected),
            (DriftType::Scaling, Severity::High, false)
        );
        assert_eq!(i.item.actor.as_deref(), Some("kubectl-scale"));
        assert_eq!(det.unit_slug.as_deref(), Some("web"));
        assert_eq!(det.revision.as_deref(), Some("7"));
        assert_eq!(
            det.kustomization,
            Some(ObjectRef::new("flux-system", "apps"))
        );
    }

    #[test]
    fn small_scaling_is_medium_and_hpa_scaling_is_expected() {
        let key = ObjectKey::new("Deployment", "default", "web");
        let (d, l) = pair(4, 5, "kubectl-scale");
        let det = detect(&key, &d, Some(&l), &ctx(&[])).unwrap();
        assert_eq!(det.items[0].severity, Severity::Medium);
        let (d, l) = pair(1, 3, "horizontal-pod-autoscaler");
        let det = detect(&key, &d, Some(&l), &ctx(&[])).unwrap();
        assert!(det.items[0].expected);
        let (d, l) = pair(1, 1, "kubectl-scale");
        assert_eq!(detect(&key, &d, Some(&l), &ctx(&[])), None);
    }
}
