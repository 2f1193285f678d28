#!/usr/bin/env bash
# The demo: a real local control plane and the controller running against it.
# Ctrl-C stops the controller; `hack/dev-cluster.sh down` stops the cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

eval "$(bash hack/dev-cluster.sh up)"
echo "cluster up: KUBECONFIG=$KUBECONFIG"
cargo build --release
echo "controller health and metrics on http://127.0.0.1:8080 (Ctrl-C to stop)"
exec target/release/confighub-source-controller run --http-addr 127.0.0.1:8080 --log-format text
