#!/usr/bin/env bash
# Edit to delivery (docs/benchmarks.md, issue 14 P3) on a private control plane (etcd, kube-apiserver, the
# real kustomize-controller; hack/dev-cluster.sh), a local hub and the controller (release build), all on
# free loopback ports:
#
#   1. loads UNITS ConfigMap units (`cm-NNNN`, `data.key`) into one space; one ConfigHubRepository and one
#      Kustomization (both `interval: 10m`, so nothing but the edits triggers them) deliver them;
#   2. SAMPLES times: edits one unit in the hub, sets `reconcile.fluxcd.io/requestedAt` on the repository,
#      and times the new ExternalArtifact revision, the ConfigMap changing in the cluster and the
#      Kustomization's lastAppliedRevision (examples/delivery_bench.rs, with watches).
#
# Usage: hack/bench-delivery.sh [units]      (default 100)
#   env: SAMPLES=20 PAUSE_MS=1000 OUT=target/bench-delivery KEEP=1 (keep the temp dir)
set -euo pipefail
UNITS=${1:-100}
SAMPLES=${SAMPLES:-20}
PAUSE_MS=${PAUSE_MS:-1000}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET/bench-delivery}
WORK="$(mktemp -d -t bench-delivery-XXXXXX)"
NS=bench
TOKEN=bench-token

pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i p
  # Reverse start order: controller, hub, then the control plane (dev-cluster.sh stops its children).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  mkdir -p "$OUT"
  cp "$WORK/cluster/logs/kustomize-controller.log" "$WORK/controller.log" "$OUT/" 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "bench-delivery: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }
die() { echo "bench-delivery: ERROR: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.5s until it succeeds.
wait_until() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

for tool in python3 curl cargo setpriv; do command -v $tool >/dev/null || die "$tool is required"; done

log "building (release): the controller and examples/delivery_bench"
(cd "$ROOT" && cargo build --release --locked --quiet --bin confighub-source-controller --example delivery_bench) \
  || die "cargo build failed"
BIN=$TARGET/release/confighub-source-controller
BENCH=$TARGET/release/examples/delivery_bench
TESTBIN=$(bash "$ROOT/hack/testbin.sh") || die "hack/testbin.sh failed"
export PATH="$TESTBIN/bin:$PATH"

log "control plane (hack/dev-cluster.sh start $WORK/cluster)"
bash "$ROOT/hack/dev-cluster.sh" start "$WORK/cluster" >"$WORK/cluster.out" 2>&1 &
pids+=($!)
end=$((SECONDS + 180))
until grep -q '^READY ' "$WORK/cluster.out"; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$WORK/cluster.out" >&2; die "the control plane failed to start"; }
  ((SECONDS < end)) || { cat "$WORK/cluster.out" >&2; die "the control plane was not ready within 180s"; }
  sleep 0.2
done
export KUBECONFIG=$WORK/cluster/kubeconfig

log "hub with $UNITS ConfigMap units"
mkdir -p "$WORK/units"
for ((i = 0; i < UNITS; i++)); do
  # The same text examples/delivery_bench.rs writes for an edit.
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n  key: value-%d\n' "$i" "$i" \
    >"$WORK/units/cm-$(printf %04d "$i").yaml"
done
HUB_PORT=$(free_port)
HUB_URL=http://127.0.0.1:$HUB_PORT
"$BIN" hub --addr "127.0.0.1:$HUB_PORT" --data "$WORK/hub" --token "$TOKEN" >"$WORK/hub.log" 2>&1 &
pids+=($!)
wait_until 30 "the hub" curl -fs "$HUB_URL/api/info"
"$BIN" hub import --space "$NS" --url "$HUB_URL" --token "$TOKEN" "$WORK/units" >"$WORK/import.log" 2>&1 \
  || { tail -20 "$WORK/import.log" >&2; die "hub import failed"; }

log "controller (release)"
HTTP_PORT=$(free_port)
STORAGE_PORT=$(free_port)
"$BIN" run --storage-path "$WORK/storage" --storage-addr "127.0.0.1:$STORAGE_PORT" \
  --http-addr "127.0.0.1:$HTTP_PORT" --log-format json >"$WORK/controller.log" 2>&1 &
pids+=($!)
wait_until 60 "the controller's HTTP endpoint" curl -fs "http://127.0.0.1:$HTTP_PORT/metrics"

log "ConfigHubRepository and Kustomization (interval 10m)"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
---
apiVersion: v1
kind: Secret
metadata:
  name: confighub
  namespace: $NS
stringData:
  token: $TOKEN
---
apiVersion: source.confighub.com/v1beta1
kind: ConfigHubRepository
metadata:
  name: bench
  namespace: $NS
spec:
  url: $HUB_URL
  space: $NS
  interval: 10m
  secretRef:
    name: confighub
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: bench
  namespace: $NS
spec:
  interval: 10m
  prune: true
  wait: false
  path: ./
  targetNamespace: $NS
  sourceRef:
    kind: ExternalArtifact
    name: bench
YAML
kubectl wait --for=condition=Ready chr/bench -n "$NS" --timeout=300s >/dev/null \
  || { kubectl get chr -n "$NS" -o yaml >&2; die "the ConfigHubRepository did not become Ready"; }
kubectl wait --for=condition=Ready kustomization/bench -n "$NS" --timeout=300s >/dev/null \
  || { kubectl get kustomization -n "$NS" -o yaml >&2; die "the Kustomization did not become Ready"; }

mkdir -p "$OUT"
{
  echo "# hack/bench-delivery.sh $UNITS (SAMPLES=$SAMPLES PAUSE_MS=$PAUSE_MS)"
  echo
  echo "date: $(date -u +%FT%TZ); $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$OUT/summary.md"
"$BENCH" --hub "$HUB_URL" --token "$TOKEN" --space "$NS" --namespace "$NS" --units "$UNITS" \
  --samples "$SAMPLES" --pause-ms "$PAUSE_MS" --http "127.0.0.1:$HTTP_PORT" | tee -a "$OUT/summary.md"
rc=${PIPESTATUS[0]}
{
  echo
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  grep -o 'Reconciliation finished in [^,]*' "$WORK/cluster/logs/kustomize-controller.log" | tail -n "$SAMPLES" \
    | awk '{print $4}' | tr '\n' ' ' | sed 's/^/kustomize-controller reconcile durations (its log): /'
  echo
} | tee -a "$OUT/summary.md"
((rc == 0)) || die "delivery_bench failed (exit $rc); logs in $OUT"
log "summary written to $OUT/summary.md"
