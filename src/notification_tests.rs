use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::TimeZone;

use super::*;
use crate::api::{Artifact, ConfigHubRepositoryStatus};

fn repository(revision: Option<&str>) -> ConfigHubRepository {
    let mut chr: ConfigHubRepository = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.confighub.com/v1alpha1",
        "kind": "ConfigHubRepository",
        "metadata": {
            "name": "web", "namespace": "team-a",
            "annotations": {
                "event.toolkit.fluxcd.io/cluster": "prod-eu",
                "confighub.com/other": "not copied"
            }
        },
        "spec": {"space": "web", "interval": "1m", "secretRef": {"name": "s"}}
    }))
    .unwrap();
    if let Some(revision) = revision {
        chr.status = Some(ConfigHubRepositoryStatus {
            artifact: Some(Artifact {
                revision: revision.into(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    chr
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 3, 4, 5).unwrap()
}

#[test]
fn events_are_about_the_external_artifact_in_flux_field_names() {
    let event = flux_event(
        &repository(Some("head@sha256:aa")),
        true,
        "FetchFailed",
        "space web: 503",
        None,
        at(),
        "pod-1",
    );
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "involvedObject": {
                "kind": "ExternalArtifact", "namespace": "team-a", "name": "web",
                "apiVersion": "source.toolkit.fluxcd.io/v1"
            },
            "severity": "error",
            "timestamp": "2026-12-01T03:04:05Z",
            "message": "space web: 503",
            "reason": "FetchFailed",
            "metadata": {
                "event.toolkit.fluxcd.io/cluster": "prod-eu",
                "source.toolkit.fluxcd.io/revision": "head@sha256:aa"
            },
            "reportingController": "confighub-source-controller",
            "reportingInstance": "pod-1"
        })
    );
}

#[test]
fn a_given_revision_wins_over_the_stored_one_and_normal_events_are_info() {
    let event = flux_event(
        &repository(Some("head@sha256:old")),
        false,
        "NewArtifact",
        "stored",
        Some("head@sha256:new"),
        at(),
        "",
    );
    assert_eq!(event.severity, "info");
    assert_eq!(
        event.metadata["source.toolkit.fluxcd.io/revision"],
        "head@sha256:new"
    );
    let json = serde_json::to_value(&event).unwrap();
    assert!(json.get("reportingInstance").is_none());
}

#[test]
fn without_any_revision_there_is_no_revision_key_and_long_messages_are_cut_on_a_character() {
    let long = "é".repeat(MAX_MESSAGE);
    let event = flux_event(&repository(None), true, "X", &long, None, at(), "i");
    assert!(
        !event
            .metadata
            .contains_key("source.toolkit.fluxcd.io/revision")
    );
    assert!(event.message.len() <= MAX_MESSAGE && event.message.len() >= MAX_MESSAGE - 1);
    assert!(event.message.chars().all(|c| c == 'é'));
    let empty = flux_event(&repository(None), false, "Reason", "", None, at(), "i");
    assert_eq!(empty.message, "Reason");
}

/// A receiver answering each post with the next status of `script` (then 202), recording bodies.
async fn receiver(script: Vec<u16>) -> (url::Url, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.into_iter()));
    let app = axum::Router::new().route(
        "/",
        axum::routing::post({
            let seen = seen.clone();
            move |axum::Json(body): axum::Json<serde_json::Value>| {
                let seen = seen.clone();
                let script = script.clone();
                async move {
                    seen.lock().unwrap().push(body);
                    let code = script.lock().unwrap().next().unwrap_or(202);
                    StatusCode::from_u16(code).unwrap()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/").parse().unwrap(), seen)
}

fn counted(registry: &Registry, result: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("confighub_notification_events_total")
                && l.contains(&format!("result=\"{result}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

async fn wait_for(registry: &Arc<Mutex<Registry>>, result: &str, n: u64) {
    for _ in 0..500 {
        if counted(&registry.lock().unwrap(), result) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{result} never reached {n}");
}

#[tokio::test]
async fn posts_retry_server_errors_give_up_on_refusals_and_count_duplicates() {
    // 1st event: 500 then 202 (sent after a retry); 2nd: 429 (duplicate); 3rd: 400 (refused).
    let (url, seen) = receiver(vec![500, 202, 429, 400]).await;
    let registry = Arc::new(Mutex::new(Registry::default()));
    let notifier = Notifier::start_with(
        url,
        "i".into(),
        &mut registry.lock().unwrap(),
        Duration::from_millis(1),
    )
    .unwrap();
    for reason in ["A", "B", "C"] {
        notifier.send(flux_event(
            &repository(None),
            false,
            reason,
            "m",
            None,
            at(),
            "i",
        ));
    }
    wait_for(&registry, "refused", 1).await;
    let registry = registry.lock().unwrap();
    assert_eq!(counted(&registry, "sent"), 1);
    assert_eq!(counted(&registry, "duplicate"), 1);
    let reasons: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["reason"].clone())
        .collect();
    assert_eq!(reasons, ["A", "A", "B", "C"]);
}

#[tokio::test]
async fn an_unreachable_receiver_is_counted_as_failed_after_the_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let registry = Arc::new(Mutex::new(Registry::default()));
    let notifier = Notifier::start_with(
        url,
        "i".into(),
        &mut registry.lock().unwrap(),
        Duration::from_millis(1),
    )
    .unwrap();
    notifier.send(flux_event(
        &repository(None),
        true,
        "A",
        "m",
        None,
        at(),
        "i",
    ));
    wait_for(&registry, "failed", 1).await;
    assert_eq!(counted(&registry.lock().unwrap(), "sent"), 0);
}
