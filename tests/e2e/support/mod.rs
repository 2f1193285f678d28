//! Shared helpers for the end-to-end tests.

pub mod artifact_server;
pub mod cluster;
pub mod controller;
pub mod hub;
pub mod kube_helpers;
pub mod own_controller;
pub mod postgres;
pub mod service_account;
pub mod tied;

pub use artifact_server::*;
pub use cluster::control_plane;
pub use controller::{controller, http_get};
pub use hub::TestHub;
pub use kube_helpers::*;
