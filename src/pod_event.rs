//! Events about the controller process itself rather than one repository (the drift database was
//! moved aside, say) go to its Pod, which the chart names through the downward API (`POD_NAME`,
//! `POD_NAMESPACE`): `kubectl describe pod` and `kubectl get events` then show them next to restarts.
//! Outside a Pod there is nothing to attach them to, and the log line is all there is.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The Pod this process runs as, from the downward API variables, if both are set.
pub(crate) fn own_pod() -> Option<ObjectReference> {
    pod_from(
        std::env::var("POD_NAME").ok(),
        std::env::var("POD_NAMESPACE").ok(),
    )
}

fn pod_from(name: Option<String>, namespace: Option<String>) -> Option<ObjectReference> {
    let name = name.filter(|n| !n.trim().is_empty())?;
    let namespace = namespace.filter(|n| !n.trim().is_empty())?;
    Some(ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(name),
        namespace: Some(namespace),
        ..Default::default()
    })
}

/// Publishes a Warning Event on this process's Pod; logs (at debug) and goes on when it cannot.
pub(crate) async fn warn_on_own_pod(client: Client, reason: &str, note: String) {
    let Some(pod) = own_pod() else {
        tracing::debug!(
            reason,
            "no POD_NAME/POD_NAMESPACE: the event is in the log only"
        );
        return;
    };
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "confighub-source-controller".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: "Start".into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, &pod).await {
        tracing::warn!(error = %err, reason, "could not publish an event on the controller's pod");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_needs_both_name_and_namespace() {
        let pod = pod_from(Some("c-1".into()), Some("flux-system".into())).unwrap();
        assert_eq!(pod.kind.as_deref(), Some("Pod"));
        assert_eq!(pod.name.as_deref(), Some("c-1"));
        assert_eq!(pod.namespace.as_deref(), Some("flux-system"));
        assert!(pod_from(Some("c-1".into()), None).is_none());
        assert!(pod_from(None, Some("flux-system".into())).is_none());
        assert!(pod_from(Some(" ".into()), Some("flux-system".into())).is_none());
    }
}
