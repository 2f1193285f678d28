//! Drift types and default severities, and which drift is expected (see the table in docs/drift.md).
//! Rules look at the item's path (desired pointer), the object kind and, for references to Secrets, at
//! the keys of the values; first match wins.

use serde_json::Value;

use super::pointer;
use super::types::{DriftItem, DriftType, IgnoreRule, Severity};

/// A relative replica change at or above this is High.
pub const SCALING_HIGH_RATIO: f64 = 0.5;

const SECRET_REF_KEYS: [&str; 5] = [
    "secretKeyRef",
    "secretRef",
    "secret",
    "secretName",
    "imagePullSecrets",
];

/// Type and default severity of one item of an object of `kind`.
pub fn classify_item(kind: &str, item: &DriftItem) -> (DriftType, Severity) {
    use DriftType as T;
    use Severity::{High, Low, Medium};
    if item.is_deletion() {
        return (T::Deleted, High);
    }
    let segs = pointer::segments(&item.path);
    let first = segs.first().map(String::as_str).unwrap_or("");
    let has = |name: &str| segs.iter().any(|s| s == name);
    if kind == "Secret" && first != "metadata" {
        return (T::SecretChange, High);
    }
    if kind == "ConfigMap" && matches!(first, "data" | "binaryData") {
        return (T::ConfigMapChange, Medium);
    }
    if let Some(i) = segs.iter().position(|s| s == "metadata") {
        match segs.get(i + 1).map(String::as_str) {
            Some("labels") => return (T::LabelChange, Low),
            Some("annotations") => return (T::AnnotationChange, Low),
            _ => {}
        }
    }
    if SECRET_REF_KEYS.iter().any(|k| has(k))
        || [&item.desired, &item.live]
            .into_iter()
            .flatten()
            .any(mentions_secret)
    {
        return (T::SecretChange, High);
    }
    if segs.last().is_some_and(|s| s == "replicas") && first == "spec" {
        return (T::Scaling, scaling_severity(item));
    }
    if has("image") {
        return (T::VersionChange, High);
    }
    if has("resources") {
        return (T::ResourceChange, Medium);
    }
    if ["env", "envFrom", "args", "command"].iter().any(|k| has(k)) {
        return (T::ConfigurationChange, Medium);
    }
    if has("ports") {
        return (T::PortChange, Medium);
    }
    if has("volumes") || has("volumeMounts") {
        return (T::VolumeChange, Medium);
    }
    (T::Other, Low)
}

/// High when replicas changed by half or more of the desired count (or from zero); else Medium.
fn scaling_severity(item: &DriftItem) -> Severity {
    let num = |v: &Option<Value>| v.as_ref().and_then(Value::as_f64);
    let (Some(d), Some(l)) = (num(&item.desired), num(&item.live)) else {
        return Severity::Medium;
    };
    let big = if d == 0.0 {
        l != 0.0
    } else {
        ((l - d) / d).abs() >= SCALING_HIGH_RATIO
    };
    if big {
        Severity::High
    } else {
        Severity::Medium
    }
}

/// Whether a value (an env entry, a volume, an envFrom source) refers to a Secret.
fn mentions_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| SECRET_REF_KEYS.contains(&k.as_str()) || mentions_secret(v)),
        Value::Array(a) => a.iter().any(mentions_secret),
        _ => false,
    }
}

/// Every item's type and severity, in order.
pub fn classify(kind: &str, items: &[DriftItem]) -> Vec<(DriftType, Severity)> {
    items.iter().map(|i| classify_item(kind, i)).collect()
}

/// The highest severity, if there is any item.
pub fn highest(classes: &[(DriftType, Severity)]) -> Option<Severity> {
    classes.iter().map(|(_, s)| *s).max()
}

/// Field managers of autoscalers: their changes are the point, not drift.
pub fn is_autoscaler(manager: &str) -> bool {
    let m = manager.to_ascii_lowercase();
    m.contains("autoscaler")
        || m.starts_with("vpa-")
        || m.starts_with("keda")
        || m == "horizontal-pod-autoscaler"
}

/// Expected drift is recorded but never acted on: the field's current manager is an autoscaler (HPA,
/// VPA, KEDA, anything named `*autoscaler*`), or a repository ignore rule covers it.
pub fn expected(item: &DriftItem, ignore: &[IgnoreRule], kind: &str, name: &str) -> bool {
    item.actor.as_deref().is_some_and(is_autoscaler)
        || ignore
            .iter()
            .any(|rule| rule_matches(rule, &item.path, kind, name))
}

fn rule_matches(rule: &IgnoreRule, path: &str, kind: &str, name: &str) -> bool {
    let kind_ok = rule
        .kind
        .as_deref()
        .is_none_or(|k| k.eq_ignore_ascii_case(kind));
    let name_ok = rule
        .name
        .as_deref()
        .is_none_or(|n| match n.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => n == name,
        });
    kind_ok
        && name_ok
        && (rule.paths.is_empty() || rule.paths.iter().any(|p| pointer::is_prefix(p, path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(path: &str, d: Value, l: Value) -> DriftItem {
        DriftItem {
            path: path.into(),
            desired: Some(d),
            live: Some(l),
            actor: None,
        }
    }

    #[test]
    fn scaling_severity_follows_the_relative_change() {
        let c = |d, l| classify_item("Deployment", &item("/spec/replicas", json!(d), json!(l)));
        assert_eq!(c(1, 3), (DriftType::Scaling, Severity::High));
        assert_eq!(c(4, 5), (DriftType::Scaling, Severity::Medium));
        assert_eq!(c(4, 2), (DriftType::Scaling, Severity::High));
        assert_eq!(c(0, 2), (DriftType::Scaling, Severity::High));
    }

    #[test]
    fn path_rules() {
        let c = |kind: &str, path: &str| classify_item(kind, &item(path, json!("a"), json!("b")));
        let pod = "/spec/template/spec/containers/0";
        assert_eq!(
            c("Deployment", &format!("{pod}/image")),
            (DriftType::VersionChange, Severity::High)
        );
        assert_eq!(
            c("Deployment", &format!("{pod}/resources/limits/cpu")).0,
            DriftType::ResourceChange
        );
        assert_eq!(
            c("Deployment", &format!("{pod}/env/0/value")).0,
            DriftType::ConfigurationChange
        );
        assert_eq!(
            c("Deployment", &format!("{pod}/args")).0,
            DriftType::ConfigurationChange
        );
        assert_eq!(
            c("Deployment", &format!("{pod}/command")).0,
            DriftType::ConfigurationChange
        );
        assert_eq!(
            c("Deployment", &format!("{pod}/ports/0/containerPort")).0,
            DriftType::PortChange
        );
        assert_eq!(
            c("Service", "/spec/ports/0/port"),
            (DriftType::PortChange, Severity::Medium)
        );
        assert_eq!(
            c("Deployment", &format!("{pod}/volumeMounts/0/mountPath")).0,
            DriftType::VolumeChange
        );
        assert_eq!(
            c("Deployment", "/spec/template/spec/volumes/0/configMap/name").0,
            DriftType::VolumeChange
        );
        assert_eq!(
            c("Deployment", "/metadata/labels/app"),
            (DriftType::LabelChange, Severity::Low)
        );
        assert_eq!(
            c("Deployment", "/spec/template/metadata/labels/app").0,
            DriftType::LabelChange
        );
        assert_eq!(
            c("Deployment", "/metadata/annotations/x"),
            (DriftType::AnnotationChange, Severity::Low)
        );
        assert_eq!(
            c("Secret", "/data/password"),
            (DriftType::SecretChange, Severity::High)
        );
        assert_eq!(c("Secret", "/metadata/labels/a").0, DriftType::LabelChange);
        assert_eq!(
            c("ConfigMap", "/data/secret"),
            (DriftType::ConfigMapChange, Severity::Medium)
        );
        assert_eq!(
            c(
                "Deployment",
                &format!("{pod}/env/1/valueFrom/secretKeyRef/name")
            )
            .0,
            DriftType::SecretChange
        );
        assert_eq!(
            c(
                "Deployment",
                "/spec/template/spec/volumes/1/secret/secretName"
            )
            .0,
            DriftType::SecretChange
        );
        assert_eq!(
            c("Deployment", "/spec/strategy/type"),
            (DriftType::Other, Severity::Low)
        );
    }

    #[test]
    fn whole_values_referring_to_secrets_are_secret_changes() {
        let env = DriftItem {
            path: "/spec/template/spec/containers/0/env/2".into(),
            desired: Some(
                json!({"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}),
            ),
            live: None,
            actor: None,
        };
        assert_eq!(
            classify_item("Deployment", &env),
            (DriftType::SecretChange, Severity::High)
        );
    }

    #[test]
    fn deletion_is_high() {
        let d = DriftItem::deleted(json!({}));
        assert_eq!(
            classify("ConfigMap", &[d]),
            vec![(DriftType::Deleted, Severity::High)]
        );
        assert_eq!(highest(&[]), None);
        assert_eq!(
            highest(&[
                (DriftType::Other, Severity::Low),
                (DriftType::Scaling, Severity::Medium)
            ]),
            Some(Severity::Medium)
        );
    }

    #[test]
    fn autoscaler_owned_fields_and_ignore_rules_are_expected() {
        let mut i = item("/spec/replicas", json!(1), json!(4));
        for m in [
            "horizontal-pod-autoscaler",
            "vpa-updater",
            "vpa-recommender",
            "keda-operator",
            "cluster-autoscaler",
        ] {
            i.actor = Some(m.into());
            assert!(expected(&i, &[], "Deployment", "web"), "{m}");
        }
        i.actor = Some("kubectl-scale".into());
        assert!(!expected(&i, &[], "Deployment", "web"));
        let rule = IgnoreRule {
            paths: vec!["/spec/replicas".into()],
            kind: Some("deployment".into()),
            name: Some("web".into()),
        };
        assert!(expected(
            &i,
            std::slice::from_ref(&rule),
            "Deployment",
            "web"
        ));
        assert!(!expected(
            &i,
            std::slice::from_ref(&rule),
            "Deployment",
            "api"
        ));
        assert!(!expected(
            &i,
            std::slice::from_ref(&rule),
            "StatefulSet",
            "web"
        ));
        let wildcard = IgnoreRule {
            paths: vec!["/spec/template/spec/containers/*/image".into()],
            kind: None,
            name: Some("we*".into()),
        };
        let img = item(
            "/spec/template/spec/containers/3/image",
            json!("a"),
            json!("b"),
        );
        assert!(expected(&img, &[wildcard], "Deployment", "web"));
        let whole = IgnoreRule {
            paths: vec![],
            kind: Some("ConfigMap".into()),
            name: None,
        };
        assert!(expected(
            &DriftItem::deleted(json!({})),
            &[whole],
            "ConfigMap",
            "x"
        ));
    }
}
