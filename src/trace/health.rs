//! The traced object's own state, read from its status (pure): `3/3 ready` for workloads, the Pod phase,
//! a Job's completions, or Ready/Available conditions; and the images of workloads.

use serde_json::Value;

use super::model::Mark;

#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub mark: Mark,
    pub summary: String,
    /// Ready or not; `None` for objects without any notion of readiness (ConfigMap, Service, …).
    pub ready: Option<bool>,
    pub message: Option<String>,
    pub images: Vec<String>,
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn condition_is(obj: &Value, type_: &str, status: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == status)
}

fn condition_message(obj: &Value, type_: &str) -> Option<String> {
    let c = condition(obj, type_)?;
    let reason = c["reason"].as_str().unwrap_or_default();
    let message = c["message"].as_str().unwrap_or_default();
    let text = match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, false) => message.to_string(),
        (true, true) => return None,
    };
    Some(text)
}

/// The images of a workload, Pod or CronJob, in container order (init containers first).
pub fn images(obj: &Value) -> Vec<String> {
    let pod_spec = match obj["kind"].as_str().unwrap_or_default() {
        "Pod" => &obj["spec"],
        "CronJob" => &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &obj["spec"]["template"]["spec"],
    };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod_spec[*k].as_array())
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_string))
        .collect()
}

fn ok(summary: String, ready: Option<bool>) -> Health {
    Health {
        mark: Mark::Ok,
        summary,
        ready,
        message: None,
        images: Vec::new(),
    }
}

fn replicas(obj: &Value, desired: i64, ready: i64, updated: Option<i64>) -> Health {
    let summary = format!("{ready}/{desired} ready");
    let current_generation = obj["status"]["observedGeneration"]
        .as_i64()
        .is_none_or(|g| g >= obj["metadata"]["generation"].as_i64().unwrap_or(0));
    let failed = (condition_is(obj, "Progressing", "False")
        && condition(obj, "Progressing")
            .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded"))
        || condition_is(obj, "ReplicaFailure", "True");
    if failed {
        return Health {
            mark: Mark::Fail,
            summary,
            ready: Some(false),
            message: condition_message(obj, "ReplicaFailure")
                .or_else(|| condition_message(obj, "Progressing")),
            images: Vec::new(),
        };
    }
    let done = ready >= desired && updated.is_none_or(|u| u >= desired) && current_generation;
    if done {
        return ok(summary, Some(true));
    }
    Health {
        mark: Mark::Warn,
        summary,
        ready: Some(false),
        message: Some(if current_generation {
            format!("{ready} of {desired} replicas ready")
        } else {
            "the controller has not observed the latest generation yet".to_string()
        }),
        images: Vec::new(),
    }
}

fn pod(obj: &Value) -> Health {
    let phase = obj["status"]["phase"].as_str().unwrap_or("Unknown");
    let statuses = obj["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = obj["spec"]["containers"]
        .as_array()
        .map_or(statuses.len(), Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let waiting = statuses.iter().find_map(|s| {
        let reason = s["state"]["waiting"]["reason"].as_str()?;
        matches!(
            reason,
            "CrashLoopBackOff"
                | "ImagePullBackOff"
                | "ErrImagePull"
                | "CreateContainerConfigError"
                | "InvalidImageName"
        )
        .then(|| {
            let message = s["state"]["waiting"]["message"]
                .as_str()
                .unwrap_or_default();
            format!("{}: {reason} {message}", s["name"].as_str().unwrap_or("?"))
                .trim_end()
                .to_string()
        })
    });
    let summary = format!("{phase}, {ready}/{total} containers ready");
    match phase {
        "Succeeded" => ok("Completed".to_string(), Some(true)),
        "Failed" => Health {
            mark: Mark::Fail,
            summary,
            ready: Some(false),
            message: obj["status"]["message"].as_str().map(str::to_string),
            images: Vec::new(),
        },
        _ if waiting.is_some() => Health {
            mark: Mark::Fail,
            summary,
            ready: Some(false),
            message: waiting,
            images: Vec::new(),
        },
        "Running" if condition_is(obj, "Ready", "True") => ok(summary, Some(true)),
        _ => Health {
            mark: Mark::Warn,
            summary,
            ready: Some(false),
            message: condition_message(obj, "Ready"),
            images: Vec::new(),
        },
    }
}

fn job(obj: &Value) -> Health {
    let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
    let succeeded = int(&obj["status"]["succeeded"]);
    let summary = format!("{succeeded}/{completions} complete");
    if condition_is(obj, "Failed", "True") {
        return Health {
            mark: Mark::Fail,
            summary,
            ready: Some(false),
            message: condition_message(obj, "Failed"),
            images: Vec::new(),
        };
    }
    if condition_is(obj, "Complete", "True") || succeeded >= completions {
        return ok(summary, Some(true));
    }
    Health {
        mark: Mark::Warn,
        summary,
        ready: Some(false),
        message: Some(format!("{} active", int(&obj["status"]["active"]))),
        images: Vec::new(),
    }
}

/// Ready/Available conditions, Stalled, or nothing to say.
fn generic(obj: &Value) -> Health {
    if condition_is(obj, "Stalled", "True") {
        return Health {
            mark: Mark::Fail,
            summary: "Stalled".to_string(),
            ready: Some(false),
            message: condition_message(obj, "Stalled"),
            images: Vec::new(),
        };
    }
    for type_ in ["Ready", "Available"] {
        if let Some(c) = condition(obj, type_) {
            return match c["status"].as_str() {
                Some("True") => ok(type_.to_string(), Some(true)),
                Some("False") => Health {
                    mark: Mark::Fail,
                    summary: format!("not {type_}"),
                    ready: Some(false),
                    message: condition_message(obj, type_),
                    images: Vec::new(),
                },
                _ => Health {
                    mark: Mark::Warn,
                    summary: format!("{type_} unknown"),
                    ready: None,
                    message: condition_message(obj, type_),
                    images: Vec::new(),
                },
            };
        }
    }
    ok("exists".to_string(), None)
}

pub fn object_health(obj: &Value) -> Health {
    let status = &obj["status"];
    let mut health = match obj["kind"].as_str().unwrap_or_default() {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let desired = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let updated = match obj["kind"].as_str() {
                Some("ReplicaSet") => None,
                _ => Some(if status["updatedReplicas"].is_null() {
                    int(&status["replicas"])
                } else {
                    int(&status["updatedReplicas"])
                }),
            };
            replicas(obj, desired, int(&status["readyReplicas"]), updated)
        }
        "DaemonSet" => replicas(
            obj,
            int(&status["desiredNumberScheduled"]),
            int(&status["numberReady"]),
            Some(int(&status["updatedNumberScheduled"])),
        ),
        "Pod" => pod(obj),
        "Job" => job(obj),
        "CronJob" => {
            let suspended = obj["spec"]["suspend"] == true;
            let last = status["lastScheduleTime"].as_str();
            let mut h = ok(
                match (suspended, last) {
                    (true, _) => "suspended".to_string(),
                    (false, Some(t)) => format!("last run {t}"),
                    (false, None) => "not run yet".to_string(),
                },
                None,
            );
            if suspended {
                h.mark = Mark::Warn;
                h.message = Some("the CronJob is suspended".to_string());
            }
            h
        }
        _ => generic(obj),
    };
    health.images = images(obj);
    health
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "demo", "generation": 2},
               "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
               "status": status})
    }

    #[test]
    fn workloads_count_ready_replicas() {
        let h = object_health(&deployment(
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3}),
        ));
        assert_eq!(
            (h.mark, h.summary.as_str(), h.ready),
            (Mark::Ok, "3/3 ready", Some(true))
        );
        assert_eq!(h.images, vec!["nginx:1.27".to_string()]);
        let rolling = object_health(&deployment(
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 1, "updatedReplicas": 1}),
        ));
        assert_eq!(
            (rolling.mark, rolling.summary.as_str()),
            (Mark::Warn, "1/3 ready")
        );
        let stuck = object_health(&deployment(
            json!({"observedGeneration": 2, "readyReplicas": 0,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                            "message": "ReplicaSet \"web-1\" has timed out progressing."}]}),
        ));
        assert_eq!(stuck.mark, Mark::Fail);
        assert!(stuck.message.unwrap().contains("timed out"));
        let no_status = object_health(&deployment(json!(null)));
        assert_eq!(
            (no_status.mark, no_status.summary.as_str()),
            (Mark::Warn, "0/3 ready")
        );
    }

    #[test]
    fn pods_jobs_and_conditions() {
        let crash = json!({"kind": "Pod", "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m"}}}]}});
        let h = object_health(&crash);
        assert_eq!(h.mark, Mark::Fail);
        assert_eq!(
            h.message.as_deref(),
            Some("app: CrashLoopBackOff back-off 5m")
        );
        assert_eq!(h.images, vec!["app:1".to_string()]);
        let job = json!({"kind": "Job", "spec": {"completions": 1}, "status": {"succeeded": 1}});
        assert_eq!(object_health(&job).mark, Mark::Ok);
        let cm = json!({"kind": "ConfigMap", "data": {}});
        assert_eq!(
            (object_health(&cm).mark, object_health(&cm).summary.as_str()),
            (Mark::Ok, "exists")
        );
        let not_ready = json!({"kind": "Certificate", "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "Pending", "message": "waiting for issuer"}]}});
        let h = object_health(&not_ready);
        assert_eq!(h.mark, Mark::Fail);
        assert_eq!(h.message.as_deref(), Some("Pending: waiting for issuer"));
    }
}
