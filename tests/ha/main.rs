//! High availability end to end: controllers of the tests' own (several at once, killed like lost
//! nodes) on a control plane of this binary's own, so no shared controller acts on what they do. The
//! support is the end-to-end tests' (tests/e2e/support), including a real PostgreSQL server.

#[allow(dead_code, unused_imports)]
#[path = "../e2e/support/mod.rs"]
mod support;

mod drift_db;
