//! One owner per status field: the source reconciler applies every condition but `Drifted`, the drift
//! engine applies `Drifted` alone, each under its own field manager. Raced against the real API server,
//! neither loses the other's writes.

use confighub_source_controller::api::ConfigHubRepository;
use confighub_source_controller::drift::engine::apply_drifted;
use confighub_source_controller::source::conditions::{Outcome, summarize};
use confighub_source_controller::source::publish::{StatusUpdate, apply_status};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::Api;
use serde_json::json;

use crate::support::*;

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn drifted(round: usize) -> Condition {
    Condition {
        type_: "Drifted".into(),
        status: if round.is_multiple_of(2) {
            "True"
        } else {
            "False"
        }
        .into(),
        reason: "DriftDetected".into(),
        message: format!("drift round {round}"),
        observed_generation: Some(1),
        last_transition_time: now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_and_the_drift_engine_racing_never_lose_each_others_conditions() {
    let client = client().await;
    let ns = namespace(&client, "owners").await;
    // Suspended: the running controller leaves it alone, so only the two writers below touch its status.
    apply_repository(
        &client,
        &ns,
        "raced",
        json!({"url": "http://127.0.0.1:9", "space": "s", "interval": "10m", "suspend": true}),
    )
    .await;
    let api: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    let chr = api.get("raced").await.unwrap();
    const ROUNDS: usize = 30;

    let reconciler = {
        let (client, chr) = (client.clone(), chr.clone());
        tokio::spawn(async move {
            let mut conditions = Vec::new();
            for round in 0..ROUNDS {
                let outcome = Outcome {
                    generation: 1,
                    served_revision: Some(format!("head@sha256:{round:064x}")),
                    failure: None,
                    notes: vec![],
                };
                conditions = summarize(&conditions, &outcome, &now());
                let update = StatusUpdate {
                    observed_generation: Some(1),
                    conditions: conditions.clone(),
                    artifact: None,
                    last_handled_reconcile_at: None,
                };
                apply_status(&client, &chr, &update).await.unwrap();
            }
        })
    };
    let engine = {
        let api = api.clone();
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                apply_drifted(&api, "raced", drifted(round)).await.unwrap();
            }
        })
    };
    reconciler.await.unwrap();
    engine.await.unwrap();

    let status = api.get("raced").await.unwrap().status.unwrap();
    let find = |t: &str| status.conditions.iter().find(|c| c.type_ == t).cloned();
    let ready = find("Ready").expect("the reconciler's Ready survived the engine's writes");
    assert!(
        ready.message.contains(&format!("{:064x}", ROUNDS - 1)),
        "the reconciler's last write is there: {ready:?}"
    );
    let drift = find("Drifted").expect("the engine's Drifted survived the reconciler's writes");
    assert_eq!(drift.message, format!("drift round {}", ROUNDS - 1));
    // Each condition has exactly one owner.
    let managers: Vec<(String, String)> = api
        .get("raced")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.subresource.as_deref() == Some("status"))
        .map(|f| {
            let fields = serde_json::to_string(&f.fields_v1).unwrap_or_default();
            (f.manager.unwrap_or_default(), fields)
        })
        .collect();
    let owners_of = |t: &str| {
        let key = format!("k:{{\\\"type\\\":\\\"{t}\\\"}}");
        managers
            .iter()
            .filter(|(_, fields)| fields.contains(&key))
            .map(|(m, _)| m.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(owners_of("Drifted"), ["confighub-source-controller-drift"]);
    assert_eq!(owners_of("Ready"), ["confighub-source-controller"]);
}
