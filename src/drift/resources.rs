//! The resources view behind `GET /api/v1/resources`: desired and live spec, drift and health per
//! managed object. The controller fills it as it compares objects; the API only reads it.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::health::{Health, health};
use super::normalize::{normalize, normalize_pair};
use super::types::{DriftItem, ObjectKey};

/// One managed object as the API shows it. Values are normalised (Secret values masked).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub desired: Value,
    pub live: Option<Value>,
    pub drifted: bool,
    pub items: Vec<DriftItem>,
    pub health: Health,
}

impl ResourceState {
    /// Builds the view of one object; health comes from the raw live status, before normalisation
    /// drops it, and Secret values are masked before anything is kept.
    pub fn new(
        key: &ObjectKey,
        desired: &Value,
        live: Option<&Value>,
        items: Vec<DriftItem>,
    ) -> Self {
        let health = health(live);
        let (desired, live) = match live {
            Some(l) => {
                let (d, _) = normalize_pair(desired, Some(l));
                (d, Some(normalize(l)))
            }
            None => (normalize(desired), None),
        };
        Self {
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            desired,
            live,
            drifted: !items.is_empty(),
            items,
            health,
        }
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.kind, &self.namespace, &self.name)
    }
}

/// Query for [`ResourceView::list`]; `kind` matches case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    pub namespace: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

impl ResourceQuery {
    fn matches(&self, key: &ObjectKey) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self
                .kind
                .as_ref()
                .is_none_or(|k| k.eq_ignore_ascii_case(&key.kind))
            && self.name.as_ref().is_none_or(|n| *n == key.name)
    }
}

/// Where the API reads resources from. The controller may implement it over its own caches; the
/// in-memory [`ResourceRegistry`] is the default.
pub trait ResourceView: Send + Sync {
    fn list(&self, query: &ResourceQuery) -> Vec<ResourceState>;
}

/// An in-memory registry the controller fills (`upsert` after each comparison, `remove` when an object
/// leaves the inventory).
///
/// It holds every managed object (20,000 at 1,000 repositories), so each is kept as compact JSON text
/// rather than a `Value` tree (several times smaller: one allocation instead of one per field), and a
/// live object equal to its desired one is not kept twice. `list` rebuilds the values on demand.
#[derive(Default)]
pub struct ResourceRegistry {
    inner: RwLock<BTreeMap<ObjectKey, Stored>>,
}

/// A [`ResourceState`] as the registry keeps it.
struct Stored {
    desired: Box<str>,
    live: Live,
    items: Vec<DriftItem>,
    health: Health,
}

enum Live {
    Absent,
    SameAsDesired,
    Json(Box<str>),
}

fn compact(value: &Value) -> Box<str> {
    // A `Value` always serialises.
    serde_json::to_string(value).unwrap_or_default().into()
}

fn expand(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Stored {
    fn new(state: ResourceState) -> Self {
        let live = match &state.live {
            None => Live::Absent,
            Some(live) if *live == state.desired => Live::SameAsDesired,
            Some(live) => Live::Json(compact(live)),
        };
        Stored {
            desired: compact(&state.desired),
            live,
            items: state.items,
            health: state.health,
        }
    }

    fn state(&self, key: &ObjectKey) -> ResourceState {
        let desired = expand(&self.desired);
        let live = match &self.live {
            Live::Absent => None,
            Live::SameAsDesired => Some(desired.clone()),
            Live::Json(text) => Some(expand(text)),
        };
        ResourceState {
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            desired,
            live,
            drifted: !self.items.is_empty(),
            items: self.items.clone(),
            health: self.health,
        }
    }
}

impl ResourceRegistry {
    pub fn upsert(&self, state: ResourceState) {
        let key = state.key();
        let stored = Stored::new(state);
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.insert(key, stored);
    }

    /// Forgets `key`; whether it was there.
    pub fn remove(&self, key: &ObjectKey) -> bool {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.remove(key).is_some()
    }
}

impl ResourceView for ResourceRegistry {
    fn list(&self, query: &ResourceQuery) -> Vec<ResourceState> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(key, _)| query.matches(key))
            .map(|(key, stored)| stored.state(key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_filters_and_masks() {
        let reg = ResourceRegistry::default();
        let secret = json!({"kind": "Secret", "metadata": {"name": "db", "namespace": "a"}, "data": {"pw": "aHVudGVyMg=="}});
        reg.upsert(ResourceState::new(
            &ObjectKey::new("Secret", "a", "db"),
            &secret,
            Some(&secret),
            vec![],
        ));
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "b"}, "data": {"k": "v"}});
        reg.upsert(ResourceState::new(
            &ObjectKey::new("ConfigMap", "b", "cfg"),
            &cm,
            None,
            vec![DriftItem::deleted(cm.clone())],
        ));
        assert_eq!(reg.list(&ResourceQuery::default()).len(), 2);
        let q = ResourceQuery {
            kind: Some("configmap".into()),
            ..Default::default()
        };
        let found = reg.list(&q);
        assert_eq!(found.len(), 1);
        assert!(found[0].drifted);
        assert_eq!(found[0].health, Health::Unhealthy);
        let text = serde_json::to_string(&reg.list(&ResourceQuery {
            namespace: Some("a".into()),
            ..Default::default()
        }))
        .unwrap();
        assert!(!text.contains("aHVudGVyMg==") && text.contains("***"));
        assert!(reg.remove(&ObjectKey::new("Secret", "a", "db")));
        assert_eq!(reg.list(&ResourceQuery::default()).len(), 1);
    }
}
