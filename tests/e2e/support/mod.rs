//! Shared helpers for the end-to-end tests.

pub mod artifact_server;
pub mod cluster;
pub mod controller;
pub mod flux_events;
pub mod go_tool;
pub mod hub;
pub mod kube_helpers;
pub mod own_controller;
pub mod postgres;
pub mod proxy;
pub mod service_account;
pub mod shard;
pub mod tied;
pub mod tls;
pub mod units;

pub use artifact_server::*;
pub use cluster::control_plane;
pub use controller::{controller, http_get};
pub use flux_events::event_receiver;
pub use hub::TestHub;
pub use kube_helpers::*;
pub use shard::{SHARD_KEY, Shard};
pub use units::{config_map, config_map_color, deployment};
