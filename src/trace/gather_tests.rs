//! Tests of [`super`] (gather.rs).

use super::*;
use serde_json::json;

#[test]
fn drift_answers_are_told_apart() {
    let record = br#"{"id": "Deployment:demo:web", "status": "active"}"#;
    assert!(matches!(
        drift_answer("u".into(), 200, record),
        DriftLookup::Record { .. }
    ));
    assert_eq!(
        drift_answer("u".into(), 404, br#"{"message": "no drift record"}"#),
        DriftLookup::NoRecord { source: "u".into() }
    );
    // The API server's 404 for a missing Service is not "no record".
    let status = br#"{"kind": "Status", "message": "services \"x\" not found", "code": 404}"#;
    assert!(matches!(
        drift_answer("u".into(), 404, status),
        DriftLookup::Unavailable { .. }
    ));
    assert_eq!(
        record_id(&json!({"kind": "ClusterRole", "metadata": {"name": "admin"}})),
        "ClusterRole::admin"
    );
}
