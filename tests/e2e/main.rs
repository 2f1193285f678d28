//! End-to-end tests against a real control plane: etcd, kube-apiserver and Flux's kustomize-controller,
//! built from their Go modules by hack/testbin.sh. One control plane is shared by the whole binary;
//! each test works in a namespace of its own.

mod support;

mod chart;
mod crash;
mod credentials;
mod disk_full;
mod drift;
mod drift_blind;
mod drift_flow;
mod drift_paths;
mod events;
mod sharding;
mod smoke;
mod soak;
mod source;
mod spec_limits;
mod state;
mod status_owners;
mod tls;
mod trace;
