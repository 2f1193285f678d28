#!/usr/bin/env bash
# Idle memory (docs/benchmarks.md): the controller (release build) with no ConfigHubRepositories, beside
# kustomize-controller with no Kustomizations, on the same local control plane in one run. Prints the
# resident memory (VmRSS) and its peak (VmHWM) of both after IDLE_SECONDS (default 30).
#
#   hack/bench-idle.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
idle=${IDLE_SECONDS:-30}
DEV_CLUSTER_DIR=$(mktemp -d)
export DEV_CLUSTER_DIR
work=$(mktemp -d)
cleanup() {
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null || true
  bash hack/dev-cluster.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --locked --bin confighub-source-controller >&2
eval "$(bash hack/dev-cluster.sh up 2>/dev/null)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=info "${CARGO_TARGET_DIR:-target}"/release/confighub-source-controller run --storage-path "$work/storage" \
  --storage-addr 127.0.0.1:0 --http-addr "127.0.0.1:$port" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
  sleep 0.2
done
sleep "$idle"
kc=$(pgrep -f "kustomize-controller --feature-gates" | head -1)
mem() { awk -v what="$1" '$1 == what":" {printf "%.1f MB", $2 / 1024}' "/proc/$2/status"; }
printf '%-36s %12s %12s\n' "after ${idle}s idle" VmRSS VmHWM
printf '%-36s %12s %12s\n' "confighub-source-controller" "$(mem VmRSS "$pid")" "$(mem VmHWM "$pid")"
printf '%-36s %12s %12s\n' "kustomize-controller (same cluster)" "$(mem VmRSS "$kc")" "$(mem VmHWM "$kc")"
