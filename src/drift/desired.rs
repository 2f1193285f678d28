//! The desired state: the objects exactly as they stand in a repository's current artifact, with the
//! unit and revision that put each one there. Pure: tar.gz bytes in, objects out.

use std::io::Read;

use serde_json::Value;

use super::inventory::InventoryEntry;

use crate::wire::{
    ANNOTATION_REVISION_NUM as REVISION_ANNOTATION, LABEL_UNIT_SLUG as UNIT_SLUG_LABEL,
};

/// Largest archive member read back; our own build refuses larger units long before this.
const MAX_MEMBER_BYTES: u64 = 256 * 1024 * 1024;

/// One desired object. Every managed object of every repository is held between comparisons (20,000
/// at 1,000 repositories), so the object is kept as compact JSON text, parsed when it is compared,
/// and only what identifies it is kept apart.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub unit_slug: String,
    pub revision: i64,
    kind: String,
    name: String,
    namespace: String,
    group: String,
    json: Box<str>,
}

impl DesiredObject {
    pub fn new(unit_slug: String, revision: i64, object: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        DesiredObject {
            unit_slug,
            revision,
            kind: text(&object["kind"]),
            name: text(&object["metadata"]["name"]),
            namespace: text(&object["metadata"]["namespace"]),
            group: api_version
                .rsplit_once('/')
                .map(|(g, _)| g)
                .unwrap_or("")
                .to_string(),
            // A `Value` always serialises.
            json: serde_json::to_string(object).unwrap_or_default().into(),
        }
    }

    /// The object, parsed from the text it is kept as.
    pub fn object(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Whether this is the object an inventory entry names. An object without a namespace matches any
    /// (kustomize-controller places it by `targetNamespace`).
    pub fn matches(&self, entry: &InventoryEntry) -> bool {
        self.kind() == entry.kind
            && self.name() == entry.name
            && self.group() == entry.group
            && (self.namespace().is_empty() || self.namespace() == entry.namespace)
    }
}

/// Reads every object of every `*.yaml` member of an artifact.
pub fn desired_objects(tar_gz: &[u8]) -> Result<Vec<DesiredObject>, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    let mut out = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("reading artifact: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading artifact: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
            continue;
        }
        let mut text = String::new();
        entry
            .take(MAX_MEMBER_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("reading {path} from the artifact: {e}"))?;
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let object: Value = serde::Deserialize::deserialize(document)
                .map_err(|e| format!("parsing {path} from the artifact: {e}"))?;
            if !object.is_object() {
                continue;
            }
            let unit_slug = object["metadata"]["labels"][UNIT_SLUG_LABEL]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let revision = object["metadata"]["annotations"][REVISION_ANNOTATION]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            out.push(DesiredObject::new(unit_slug, revision, &object));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{BuildContext, UnitInput, build};

    #[test]
    fn reads_back_what_the_build_packed() {
        let units = vec![
            UnitInput::new(
                "web",
                "Kubernetes/YAML",
                4,
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
            ),
            UnitInput::new(
                "cfg",
                "Kubernetes/YAML",
                2,
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: team\n",
            ),
        ];
        let ctx = BuildContext {
            space_name: "s".into(),
            space_id: "id".into(),
            mode_prefix: "head",
        };
        let built = build(&units, &ctx).unwrap();
        let objects = desired_objects(&built.bytes).unwrap();
        assert_eq!(objects.len(), 2);
        let web = objects.iter().find(|o| o.name() == "web").unwrap();
        assert_eq!(
            (web.unit_slug.as_str(), web.revision, web.group()),
            ("web", 4, "apps")
        );
        assert_eq!(web.object()["spec"]["replicas"], 2);
        let entry = super::super::inventory::parse_entry("demo_web_apps_Deployment", "v1").unwrap();
        assert!(web.matches(&entry));
        let cfg = objects.iter().find(|o| o.name() == "cfg").unwrap();
        assert!(
            !cfg.matches(
                &super::super::inventory::parse_entry("demo_cfg__ConfigMap", "v1").unwrap()
            )
        );
        assert!(
            cfg.matches(
                &super::super::inventory::parse_entry("team_cfg__ConfigMap", "v1").unwrap()
            )
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(desired_objects(b"not a tarball").is_err());
    }
}
