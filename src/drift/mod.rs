//! Drift: watch what Flux applied, compare it with the artifact, classify, record, remediate.

pub mod cluster;
pub mod desired;
pub mod inventory;
