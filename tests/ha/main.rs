//! High availability end to end, on a control plane of this binary's own (so that no shared controller
//! reconciles what these tests check, and so that its kube-apiserver can be restarted without
//! disturbing other tests): leader election with two controller processes, a kube-apiserver restart
//! under a running controller, and drift state in a real PostgreSQL server shared by controllers
//! killed like lost nodes. The tests take turns (`ONE_AT_A_TIME`): one stops the API server the others
//! depend on.

// The e2e support code, shared; not every helper is used here.
#[allow(dead_code, unused_imports)]
#[path = "../e2e/support/mod.rs"]
mod support;

mod apiserver_restart;
mod drift_db;
mod instances;
mod leader;

/// Held for the whole of each test.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
