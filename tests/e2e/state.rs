//! State across restarts and versions: a drift database that cannot be read is moved aside and a new
//! one started, and the controller says so where users look: an Event on its Pod (named by the
//! downward API variables the chart sets) and one log line.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_drift_database_is_moved_aside_with_an_event_on_the_pod() {
    let client = client().await;
    let ns = namespace(&client, "state").await;
    let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-state", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // What a torn copy or a disk fault leaves: not an SQLite file at all.
    std::fs::write(dir.join("drift.db"), vec![0x5a; 8192]).unwrap();

    let pod = "confighub-source-controller-7d9f-abcde";
    let pod_name = format!("POD_NAME={pod}");
    let pod_namespace = format!("POD_NAMESPACE={ns}");
    let shard = Shard::start(
        &format!("state-{}", &ns[ns.len() - 8..]),
        Some(&dir),
        &["env", &pod_name, &pod_namespace],
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let event = wait_for("the DriftDatabaseMovedAside event", TIMEOUT, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("DriftDatabaseMovedAside"))
    })
    .await;
    let regarding = event.regarding.expect("the event names its object");
    assert_eq!(regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(regarding.name.as_deref(), Some(pod));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap_or_default();
    assert!(note.contains("drift.db.corrupt-"), "{note}");

    // The bad file is kept for whoever wants the old history, and a new database works.
    let moved: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("drift.db.corrupt-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "one moved-aside file");
    assert_eq!(std::fs::read(moved[0].path()).unwrap(), vec![0x5a; 8192]);
    let records = http_get(&format!("http://{}/api/v1/drift-records", shard.http)).await;
    assert_eq!(records.status(), 200);
    let log = shard.log_text();
    assert_eq!(
        log.matches("the record database was unreadable").count(),
        1,
        "one log line says it:\n{log}"
    );
}
