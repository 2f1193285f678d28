//! confighub-source-controller: makes ConfigHub a native Flux source.
//!
//! Data flows one way around a loop, and the modules follow it:
//! [`confighub`] (API client) → [`source`] (reconciler: fetch → build → store → publish) →
//! [`artifact`] (pure archive building) → [`http`] (artifact server, health, metrics) →
//! kustomize-controller → cluster → drift → ConfigHub. [`hub`] is a local ConfigHub-compatible server
//! and [`api`] holds the Kubernetes types.

pub mod api;
pub mod artifact;
pub mod atomic_file;
pub mod cli;
pub mod confighub;
pub mod connection;
pub mod drift;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod hub;
pub mod leader;
pub mod notification;
pub(crate) mod pod_event;
pub mod process;
pub mod run;
pub mod source;
pub mod telemetry;
pub(crate) mod trace;
pub mod wire;

#[cfg(test)]
#[path = "../tests/e2e/support/postgres.rs"]
pub(crate) mod test_postgres;
/// A real PostgreSQL server for the store tests: the end-to-end support's, shared by path.
#[cfg(test)]
#[path = "../tests/e2e/support/tied.rs"]
mod tied;
