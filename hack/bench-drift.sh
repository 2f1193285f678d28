#!/usr/bin/env bash
# Benchmarks drift detection end to end on a private control plane (etcd, kube-apiserver, the real
# kustomize-controller), a local hub and the controller (release build), all on free loopback ports:
#
#   1. loads CONFIGMAPS ConfigMap units (`data.key: value-N`) and DEPLOYMENTS Deployment units
#      (`replicas: 1`) into one space; one ConfigHubRepository (drift mode Report) and one Kustomization
#      (prune, wait: false, interval FLUX_INTERVAL) apply them; waits until the controller compared them all;
#   2. the controller's CPU and memory over an idle window of IDLE seconds;
#   3. EDITS out-of-band edits (server-side apply, field manager `bench-editor`, force), one object each,
#      timed from just before the apply until the drift API shows the new record (polled every 5 ms);
#   4. FLUX_SAMPLES more edits spread over two Flux intervals, timed until kustomize-controller restores
#      each object (a watch sees the original value again).
#
# The timing is done by examples/drift_bench.rs; the summary goes to stdout and to OUT/summary.md
# (default target/bench-drift/), with the controller's and kustomize-controller's logs next to it.
#
# Usage: hack/bench-drift.sh [configmaps] [deployments]      (default 500 500)
#   env: EDITS=100 FLUX_SAMPLES=20 FLUX_INTERVAL=30 IDLE=60 OUT=target/bench-drift KEEP=1 (keep the temp dir)
set -euo pipefail
CONFIGMAPS=${1:-500}
DEPLOYMENTS=${2:-500}
EDITS=${EDITS:-100}
FLUX_SAMPLES=${FLUX_SAMPLES:-20}
FLUX_INTERVAL=${FLUX_INTERVAL:-30}
IDLE=${IDLE:-60}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=${OUT:-$ROOT/target/bench-drift}
WORK="$(mktemp -d -t bench-drift-XXXXXX)"
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
  if [[ -d $WORK/cluster/logs ]]; then
    mkdir -p "$OUT"
    cp "$WORK/cluster/logs/kustomize-controller.log" "$OUT/" 2>/dev/null || true
  fi
  [[ -f $WORK/controller.log ]] && cp "$WORK/controller.log" "$OUT/" 2>/dev/null
  if [[ ${KEEP:-0} == 1 ]]; then echo "bench-drift: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }
die() { echo "bench-drift: ERROR: $*" >&2; exit 1; }
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
alive() { kill -0 "$1" 2>/dev/null || die "$2 exited; see $3"; }

for tool in python3 curl cargo setpriv; do command -v $tool >/dev/null || die "$tool is required"; done

log "building (release): the controller and examples/drift_bench"
(cd "$ROOT" && cargo build --release --quiet --bin confighub-source-controller --example drift_bench) \
  || die "cargo build failed"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/confighub-source-controller
BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/drift_bench
TESTBIN=$(bash "$ROOT/hack/testbin.sh") || die "hack/testbin.sh failed"
export PATH="$TESTBIN/bin:$PATH"

log "control plane (hack/dev-cluster.sh start $WORK/cluster)"
bash "$ROOT/hack/dev-cluster.sh" start "$WORK/cluster" >"$WORK/cluster.out" 2>&1 &
CLUSTER_PID=$!
pids+=("$CLUSTER_PID")
end=$((SECONDS + 180))
until grep -q '^READY ' "$WORK/cluster.out"; do
  kill -0 "$CLUSTER_PID" 2>/dev/null || { cat "$WORK/cluster.out" >&2; die "the control plane failed to start"; }
  ((SECONDS < end)) || { cat "$WORK/cluster.out" >&2; die "the control plane was not ready within 180s"; }
  sleep 0.2
done
export KUBECONFIG=$WORK/cluster/kubeconfig
APISERVER_PID=$(pgrep -P "$CLUSTER_PID" -f 'bin/kube-apiserver ' | head -1 || true)
KC_PID=$(pgrep -P "$CLUSTER_PID" -f 'bin/kustomize-controller ' | head -1 || true)

log "generating $CONFIGMAPS ConfigMap and $DEPLOYMENTS Deployment units"
python3 - "$WORK/units" "$CONFIGMAPS" "$DEPLOYMENTS" <<'PY'
import os, sys
out, cms, deps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out)
for i in range(cms):
    with open(f"{out}/cm-{i:04d}.yaml", "w") as f:
        f.write(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04d}\n  labels:\n    app: bench\n"
                f"data:\n  key: value-{i}\n  mode: production\n  limit: \"{100 + i}\"\n")
for i in range(deps):
    with open(f"{out}/web-{i:04d}.yaml", "w") as f:
        f.write(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i:04d}\n  labels:\n    app: web-{i:04d}\n"
                f"spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web-{i:04d}\n  template:\n"
                f"    metadata:\n      labels:\n        app: web-{i:04d}\n    spec:\n      containers:\n"
                f"      - name: web\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n"
                f"        env:\n        - name: INDEX\n          value: \"{i}\"\n"
                f"        resources:\n          requests:\n            cpu: 10m\n            memory: 16Mi\n")
PY

log "hub"
HUB_PORT=$(free_port)
HUB_URL=http://127.0.0.1:$HUB_PORT
"$BIN" hub --addr "127.0.0.1:$HUB_PORT" --data "$WORK/hub" --token "$TOKEN" >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
pids+=("$HUB_PID")
wait_until 30 "the hub" curl -fs "$HUB_URL/api/info"
start=$(date +%s.%N)
"$BIN" hub import --space "$NS" --url "$HUB_URL" --token "$TOKEN" "$WORK/units" >"$WORK/import.log" 2>&1 \
  || { tail -20 "$WORK/import.log" >&2; die "hub import failed"; }
log "hub import of $((CONFIGMAPS + DEPLOYMENTS)) units: $(python3 -c "import time; print(f'{time.time() - $start:.1f}s')")"

log "controller (release)"
HTTP_PORT=$(free_port)
STORAGE_PORT=$(free_port)
"$BIN" run --storage-path "$WORK/storage" --storage-addr "127.0.0.1:$STORAGE_PORT" \
  --http-addr "127.0.0.1:$HTTP_PORT" --log-format json >"$WORK/controller.log" 2>&1 &
CONTROLLER_PID=$!
pids+=("$CONTROLLER_PID")
wait_until 60 "the controller's HTTP endpoint" curl -fs "http://127.0.0.1:$HTTP_PORT/metrics"
alive "$CONTROLLER_PID" "the controller" "$WORK/controller.log"

log "ConfigHubRepository (drift mode Report) and Kustomization (interval ${FLUX_INTERVAL}s)"
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
  interval: 1m
  secretRef:
    name: confighub
  drift:
    mode: Report
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: bench
  namespace: $NS
spec:
  interval: ${FLUX_INTERVAL}s
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
applied_start=$SECONDS
kubectl wait --for=condition=Ready kustomization/bench -n "$NS" --timeout=600s >/dev/null \
  || { kubectl get kustomization -n "$NS" -o yaml >&2; die "the Kustomization did not become Ready"; }
count_objects() {
  [[ $(kubectl get configmaps,deployments -n "$NS" -l kustomize.toolkit.fluxcd.io/name=bench \
    --no-headers 2>/dev/null | wc -l) -eq $((CONFIGMAPS + DEPLOYMENTS)) ]]
}
wait_until 300 "all $((CONFIGMAPS + DEPLOYMENTS)) objects in namespace $NS" count_objects
log "kustomize-controller applied all objects ($((SECONDS - applied_start))s after the source was Ready)"
alive "$CONTROLLER_PID" "the controller" "$WORK/controller.log"

peers=()
[[ -n $APISERVER_PID ]] && peers+=(--peer "kube-apiserver=$APISERVER_PID")
[[ -n $KC_PID ]] && peers+=(--peer "kustomize-controller=$KC_PID")
mkdir -p "$OUT"
{
  echo "# hack/bench-drift.sh $CONFIGMAPS $DEPLOYMENTS (EDITS=$EDITS FLUX_SAMPLES=$FLUX_SAMPLES FLUX_INTERVAL=$FLUX_INTERVAL IDLE=$IDLE)"
  echo
  echo "date: $(date -u +%FT%TZ); $(nproc) cores; $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: $(rustc --version); $(kubectl version --client 2>/dev/null | head -1); kustomize-controller $(grep -o 'kc-v[0-9.]*' <<<"$TESTBIN" | cut -c4-)"
} >"$OUT/summary.md"
cat "$OUT/summary.md"

"$BENCH" --http "127.0.0.1:$HTTP_PORT" --namespace "$NS" --pid "$CONTROLLER_PID" \
  --configmaps "$CONFIGMAPS" --deployments "$DEPLOYMENTS" --edits "$EDITS" \
  --flux-samples "$FLUX_SAMPLES" --flux-interval "$FLUX_INTERVAL" --idle "$IDLE" "${peers[@]}" \
  | tee -a "$OUT/summary.md"
rc=${PIPESTATUS[0]}

{
  echo
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  # kustomize-controller's own reconcile time (part of the time to restore drift).
  grep -o 'Reconciliation finished in [^,]*' "$WORK/cluster/logs/kustomize-controller.log" \
    | awk '{print $4}' | python3 -c '
import re, statistics, sys
def secs(s):
    total = 0.0
    for n, u in re.findall(r"([0-9.]+)(ms|s|m)", s):
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60}[u]
    return total
v = sorted(secs(l) for l in sys.stdin if l.strip())
if v:
    print(f"kustomize-controller reconciles: {len(v)}, duration median {statistics.median(v):.2f}s, max {v[-1]:.2f}s")'
  echo "controller log lines at warn or error: $(grep -c '"level":"\(WARN\|ERROR\)"' "$WORK/controller.log" || true)"
} | tee -a "$OUT/summary.md"
((rc == 0)) || die "drift_bench failed (exit $rc); logs in $OUT"
log "summary written to $OUT/summary.md"
