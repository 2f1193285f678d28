//! One rule-based, one-line remediation suggestion per record, naming the commands a person would run.

use serde_json::Value;

use super::types::{ClassifiedItem, DriftType, ObjectRef};

/// What a suggestion is about: the parts of a drift record it reads.
pub struct Subject<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub kustomization: Option<&'a ObjectRef>,
    pub unit_slug: Option<&'a str>,
    pub expected: bool,
    /// The record's most severe acted-on item.
    pub primary: Option<&'a ClassifiedItem>,
    /// How many items are acted on.
    pub acted: usize,
}

/// Values longer than this are elided in suggestions.
const MAX_VALUE_CHARS: usize = 60;

pub fn suggest(record: &Subject<'_>) -> String {
    let Some(primary) = record.primary else {
        return "No drift.".to_string();
    };
    let object = format!("{}/{}", record.kind, record.name);
    let revert = match record.kustomization {
        Some(ks) => format!(
            "`flux reconcile kustomization {} -n {}`",
            ks.name, ks.namespace
        ),
        None => {
            "`flux reconcile kustomization <name>` on the Kustomization that applies it".to_string()
        }
    };
    let unit = match record.unit_slug {
        Some(slug) => format!("unit '{slug}'"),
        None => "its unit".to_string(),
    };
    if record.expected {
        let by = primary
            .item
            .actor
            .as_deref()
            .map_or("an ignore rule".to_string(), |a| {
                format!("{a} (expected drift)")
            });
        return format!(
            "No action needed: {} on {object} is managed by {by}.",
            field(&primary.item.path)
        );
    }
    let item = &primary.item;
    let (d, l) = (show(item.desired.as_ref()), show(item.live.as_ref()));
    match primary.drift_type {
        DriftType::Deleted => format!(
            "Recreate {object} with {revert}, or remove it from {unit} in ConfigHub if the deletion was intended."
        ),
        DriftType::SecretChange if record.kind == "Secret" => format!(
            "Restore Secret {} with {revert}; Secret values are never copied to ConfigHub, so to keep the change update {unit} yourself.",
            record.name
        ),
        DriftType::SecretChange => format!(
            "Restore the secret reference at {} with {revert}, or adopt it by updating {unit} in ConfigHub.",
            item.path
        ),
        DriftType::Scaling => format!(
            "Scale back to replicas={d} with {revert}, or adopt replicas={l} by updating {unit} in ConfigHub."
        ),
        DriftType::VersionChange => format!(
            "Roll back the image to {d} with {revert}, or adopt {l} by updating {unit} in ConfigHub."
        ),
        _ => {
            let others = record.acted.saturating_sub(1);
            let more = if others > 0 {
                format!(" and {others} more")
            } else {
                String::new()
            };
            format!(
                "Revert {}{more} ({}) with {revert}, or adopt the live value {l} by updating {unit} in ConfigHub.",
                field(&item.path),
                primary.drift_type
            )
        }
    }
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "the object".into()
    } else {
        format!("`{path}`")
    }
}

/// A short, single-line rendering of a value: strings bare, others as compact JSON, `<unset>` for none.
fn show(v: Option<&Value>) -> String {
    let s = match v {
        None => "<unset>".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > MAX_VALUE_CHARS {
        format!("{}…", s.chars().take(MAX_VALUE_CHARS).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::DriftRecord;
    use crate::drift::detect::{Detection, classify_items};
    use crate::drift::record::{DetectionSource, ObjectRef};
    use crate::drift::types::{DriftItem, IgnoreRule, ObjectKey};
    use serde_json::json;

    fn record(kind: &str, items: Vec<DriftItem>, ignore: &[IgnoreRule], ks: bool) -> DriftRecord {
        let key = ObjectKey::new(kind, "default", "web");
        let det = Detection {
            items: classify_items(&key, items, ignore),
            key,
            source: DetectionSource::Watch,
            unit_slug: Some("web".into()),
            revision: Some("3".into()),
            repository: None,
            kustomization: ks.then(|| ObjectRef::new("flux-system", "apps")),
            detected_at: chrono::Utc::now(),
        };
        DriftRecord::start(&det, 1)
    }

    fn item(path: &str, d: Value, l: Value, actor: &str) -> DriftItem {
        DriftItem {
            path: path.into(),
            desired: Some(d),
            live: Some(l),
            actor: Some(actor.into()),
        }
    }

    #[test]
    fn scaling_suggestion_names_both_ways_out() {
        let r = record(
            "Deployment",
            vec![item("/spec/replicas", json!(1), json!(3), "kubectl-scale")],
            &[],
            true,
        );
        assert_eq!(
            r.suggestion,
            "Scale back to replicas=1 with `flux reconcile kustomization apps -n flux-system`, or adopt replicas=3 by updating unit 'web' in ConfigHub."
        );
    }

    #[test]
    fn suggestions_are_single_lines_for_every_kind_of_drift() {
        let long = "x".repeat(500);
        let cases = vec![
            record(
                "Deployment",
                vec![DriftItem::deleted(json!({}))],
                &[],
                false,
            ),
            record(
                "Deployment",
                vec![item(
                    "/spec/template/spec/containers/0/image",
                    json!("a:1"),
                    json!("a:2"),
                    "k",
                )],
                &[],
                true,
            ),
            record(
                "Secret",
                vec![item("/data/pw", json!("***"), json!("*** (changed)"), "k")],
                &[],
                true,
            ),
            record(
                "ConfigMap",
                vec![
                    item("/data/a", json!("1"), json!(format!("{long}\nline")), "k"),
                    item("/data/b", json!("1"), json!("2"), "k"),
                ],
                &[],
                true,
            ),
            record(
                "Deployment",
                vec![item(
                    "/spec/replicas",
                    json!(1),
                    json!(5),
                    "horizontal-pod-autoscaler",
                )],
                &[],
                true,
            ),
        ];
        for r in cases {
            assert!(!r.suggestion.contains('\n'), "{}", r.suggestion);
            assert!(r.suggestion.len() < 400, "{}", r.suggestion);
            assert!(!r.suggestion.is_empty());
        }
    }

    #[test]
    fn expected_drift_needs_no_action() {
        let r = record(
            "Deployment",
            vec![item(
                "/spec/replicas",
                json!(1),
                json!(5),
                "horizontal-pod-autoscaler",
            )],
            &[],
            true,
        );
        assert!(r.expected);
        assert!(
            r.suggestion.starts_with("No action needed"),
            "{}",
            r.suggestion
        );
        let r = record(
            "Secret",
            vec![item(
                "/data/pw",
                json!("***"),
                json!("*** (changed)"),
                "kubectl",
            )],
            &[],
            false,
        );
        assert!(r.suggestion.contains("never copied"), "{}", r.suggestion);
        assert!(r.suggestion.contains("<name>"));
    }
}
