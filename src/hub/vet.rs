//! The hub's one validating Trigger. In the service a Space's Triggers run functions on every write and
//! record failures in the Unit's `ValidationErrors` (`"<space>/<trigger>/<function>"` → true), which make
//! a Release refuse the Unit (422). The hub has no Triggers to configure; it runs this one on every
//! `Kubernetes/YAML` write, so release gating can be exercised offline.

use crate::confighub::BoolMap;

/// The Trigger slug and function name in the `ValidationErrors` key.
pub const TRIGGER: &str = "hub-vet";
pub const FUNCTION: &str = "vet-kubernetes-yaml";

/// `ValidationErrors` for `data`: empty when every YAML document is a mapping with `apiVersion`, `kind`
/// and `metadata.name`; other toolchains are not checked.
pub fn validation_errors(space_slug: &str, toolchain: &str, data: &[u8]) -> BoolMap {
    let mut errors = BoolMap::new();
    if toolchain == "Kubernetes/YAML" && !valid_kubernetes_yaml(data) {
        errors.insert(format!("{space_slug}/{TRIGGER}/{FUNCTION}"), true);
    }
    errors
}

fn valid_kubernetes_yaml(data: &[u8]) -> bool {
    use serde::Deserialize;
    use serde_yaml_ng::Value;
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let Ok(value) = Value::deserialize(doc) else {
            return false;
        };
        if value.is_null() {
            continue;
        }
        let text_at = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
        let ok = text_at(value.get("apiVersion"))
            && text_at(value.get("kind"))
            && text_at(value.get("metadata").and_then(|m| m.get("name")));
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass_and_broken_documents_fail() {
        let ok = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n";
        assert!(validation_errors("s", "Kubernetes/YAML", ok).is_empty());
        assert!(validation_errors("s", "Kubernetes/YAML", b"").is_empty());
        let no_name = b"apiVersion: v1\nkind: ConfigMap\n";
        assert_eq!(
            validation_errors("s", "Kubernetes/YAML", no_name)
                .keys()
                .collect::<Vec<_>>(),
            ["s/hub-vet/vet-kubernetes-yaml"]
        );
        assert!(!validation_errors("s", "Kubernetes/YAML", b"a: [").is_empty());
        assert!(validation_errors("s", "AppConfig/Text", b"a: [").is_empty());
    }
}
