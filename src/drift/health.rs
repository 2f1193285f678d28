//! Health of a live object from its `status`, for the resources view. Covers the common shapes:
//! workload replica counts (Deployment, StatefulSet, ReplicaSet, DaemonSet), Pod phase, and
//! `Ready`/`Available`/`Stalled`/`Failed` conditions. Objects without status (ConfigMaps, Services)
//! are healthy by existing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    /// Working, but not fully: progressing, partly available, pending.
    Degraded,
    /// Missing, failed, or not available at all.
    Unhealthy,
}

pub fn health(live: Option<&Value>) -> Health {
    let Some(obj) = live else {
        return Health::Unhealthy;
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let Some(status) = obj.get("status").filter(|s| s.is_object()) else {
        return Health::Healthy;
    };
    if let Some(h) = from_conditions(status, true) {
        return h;
    }
    match kind {
        "Pod" => pod(status),
        "DaemonSet" => replicas(
            int(status, "desiredNumberScheduled").unwrap_or(0),
            int(status, "numberAvailable").unwrap_or(0),
            int(status, "updatedNumberScheduled").unwrap_or(0),
        ),
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let available = int(status, "availableReplicas")
                .or_else(|| int(status, "readyReplicas"))
                .unwrap_or(0);
            let updated = int(status, "updatedReplicas").unwrap_or(available);
            replicas(want, available, updated)
        }
        _ => from_conditions(status, false).unwrap_or(Health::Healthy),
    }
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn replicas(want: i64, available: i64, updated: i64) -> Health {
    if want <= 0 || (available >= want && updated >= want) {
        Health::Healthy
    } else if available == 0 {
        Health::Unhealthy
    } else {
        Health::Degraded
    }
}

fn pod(status: &Value) -> Health {
    match status.get("phase").and_then(Value::as_str) {
        Some("Succeeded") => Health::Healthy,
        Some("Running") => match condition(status, "Ready") {
            Some("False") => Health::Degraded,
            _ => Health::Healthy,
        },
        Some("Pending") => Health::Degraded,
        _ => Health::Unhealthy,
    }
}

fn condition<'a>(status: &'a Value, ty: &str) -> Option<&'a str> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))?
        .get("status")?
        .as_str()
}

/// `failures_only`: only conditions that settle health regardless of kind (Stalled, Failed,
/// Progressing=False). Otherwise Ready/Available decide.
fn from_conditions(status: &Value, failures_only: bool) -> Option<Health> {
    if condition(status, "Stalled") == Some("True") || condition(status, "Failed") == Some("True") {
        return Some(Health::Unhealthy);
    }
    if condition(status, "Progressing") == Some("False") {
        return Some(Health::Unhealthy);
    }
    if failures_only {
        return None;
    }
    for ty in ["Ready", "Available"] {
        match condition(status, ty) {
            Some("True") => return Some(Health::Healthy),
            Some("False") => return Some(Health::Unhealthy),
            Some(_) => return Some(Health::Degraded),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(replicas: i64, available: i64, updated: i64) -> Value {
        json!({"kind": "Deployment", "spec": {"replicas": replicas},
               "status": {"availableReplicas": available, "updatedReplicas": updated, "replicas": replicas}})
    }

    #[test]
    fn workloads() {
        assert_eq!(health(Some(&deploy(3, 3, 3))), Health::Healthy);
        assert_eq!(health(Some(&deploy(3, 2, 3))), Health::Degraded);
        assert_eq!(health(Some(&deploy(3, 3, 1))), Health::Degraded);
        assert_eq!(health(Some(&deploy(3, 0, 0))), Health::Unhealthy);
        assert_eq!(health(Some(&deploy(0, 0, 0))), Health::Healthy);
        let stuck = json!({"kind": "Deployment", "spec": {"replicas": 1}, "status": {"availableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}});
        assert_eq!(health(Some(&stuck)), Health::Unhealthy);
        let ds = json!({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 3, "numberAvailable": 2, "updatedNumberScheduled": 3}});
        assert_eq!(health(Some(&ds)), Health::Degraded);
    }

    #[test]
    fn pods_conditions_and_plain_objects() {
        let pod = |phase: &str, ready: &str| {
            json!({"kind": "Pod", "status": {"phase": phase,
            "conditions": [{"type": "Ready", "status": ready}]}})
        };
        assert_eq!(health(Some(&pod("Running", "True"))), Health::Healthy);
        assert_eq!(health(Some(&pod("Running", "False"))), Health::Degraded);
        assert_eq!(health(Some(&pod("Pending", "False"))), Health::Degraded);
        assert_eq!(health(Some(&pod("Failed", "False"))), Health::Unhealthy);
        let cr = |s: &str| json!({"kind": "Kustomization", "status": {"conditions": [{"type": "Ready", "status": s}]}});
        assert_eq!(health(Some(&cr("True"))), Health::Healthy);
        assert_eq!(health(Some(&cr("False"))), Health::Unhealthy);
        assert_eq!(health(Some(&cr("Unknown"))), Health::Degraded);
        assert_eq!(
            health(Some(&json!({"kind": "ConfigMap", "data": {}}))),
            Health::Healthy
        );
        assert_eq!(
            health(Some(
                &json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}})
            )),
            Health::Unhealthy
        );
        assert_eq!(health(None), Health::Unhealthy);
        assert_eq!(health(Some(&json!("garbage"))), Health::Healthy);
    }
}
