#!/usr/bin/env bash
# Scale (docs/benchmarks.md, "Scale: 1,000 repositories"): REPOS ConfigHubRepositories of UNITS units each on
# one controller (release build) against a local hub, with the real kustomize-controller applying them, on a
# private control plane (hack/dev-cluster.sh, with the kube-apiserver's audit log on), all in one run:
#
#   1. loads REPOS spaces × UNITS units into the hub (`hub import`, IMPORT_JOBS at once);
#   2. creates REPOS ConfigHubRepositories (interval CHR_INTERVAL) and Kustomizations (KS_INTERVAL)
#      while the controller is stopped, then starts it (the cold start) and times, from its start, until
#      every repository is Ready and, separately, every Kustomization is Ready (the latest Ready transition);
#   3. after SETTLE seconds, a steady-state window of STEADY seconds: ConfigHub requests (by operation,
#      with response bytes) and reconciles from the controller's metrics; kube-apiserver requests per
#      client from the audit log (user agents confighub-source-controller and kustomize-controller); CPU
#      and resident memory of both controllers from /proc, sampled every 5 s.
#
# Summary on stdout and in OUT/summary.md (default $CARGO_TARGET_DIR/bench-scale), logs next to it.
#
# Usage: hack/bench-scale.sh [REPOS]      (default 1000)
#   env: UNITS=20 CHR_INTERVAL=1m KS_INTERVAL=5m SETTLE=120 STEADY=300 IMPORT_JOBS=4 CONCURRENT=(flag default)
#        OUT=... KEEP=1 (keep the temp dir) BIN=<a built controller> (skips the build)
set -euo pipefail
REPOS=${1:-1000}
UNITS=${UNITS:-20}
CHR_INTERVAL=${CHR_INTERVAL:-1m}
KS_INTERVAL=${KS_INTERVAL:-5m}
SETTLE=${SETTLE:-120}
STEADY=${STEADY:-300}
IMPORT_JOBS=${IMPORT_JOBS:-4}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET/bench-scale}
WORK="$(mktemp -d -t bench-scale-XXXXXX)"
NS=scale
APPS=scale-apps
TOKEN=bench-token
PY="python3 $ROOT/hack/bench-scale-report.py"

pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i p
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
  cp "$WORK/cluster/logs/kustomize-controller.log" "$WORK/controller.log" "$WORK/hub.log" "$OUT/" 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "bench-scale: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $(date -u +%T) $*" >&2; }
die() { echo "bench-scale: ERROR: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_until() { # SECONDS WHAT COMMAND...: runs COMMAND every POLL (0.5) seconds until it succeeds.
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "timed out after ${secs}s waiting for $what"
    sleep "${POLL:-0.5}"
  done
}
now() { date +%s.%N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

for tool in python3 curl cargo setpriv; do command -v $tool >/dev/null || die "$tool is required"; done

if [[ -z ${BIN:-} ]]; then
  log "building (release)"
  (cd "$ROOT" && cargo build --release --quiet --bin confighub-source-controller) || die "cargo build failed"
  BIN=$TARGET/release/confighub-source-controller
fi
TESTBIN=$(bash "$ROOT/hack/testbin.sh") || die "hack/testbin.sh failed"
export PATH="$TESTBIN/bin:$PATH"

log "control plane (hack/dev-cluster.sh start, audit log on)"
DEV_CLUSTER_AUDIT=1 bash "$ROOT/hack/dev-cluster.sh" start "$WORK/cluster" >"$WORK/cluster.out" 2>&1 &
CLUSTER_PID=$!
pids+=("$CLUSTER_PID")
end=$((SECONDS + 300))
until grep -q '^READY ' "$WORK/cluster.out"; do
  kill -0 "$CLUSTER_PID" 2>/dev/null || { cat "$WORK/cluster.out" >&2; die "the control plane failed to start"; }
  ((SECONDS < end)) || die "the control plane was not ready within 300s"
  sleep 0.2
done
export KUBECONFIG=$WORK/cluster/kubeconfig
KC_PID=$(pgrep -P "$CLUSTER_PID" -f 'bin/kustomize-controller ' | head -1)
AUDIT=$WORK/cluster/logs/audit.log

log "hub: $REPOS spaces × $UNITS units"
HUB_PORT=$(free_port)
HUB_URL=http://127.0.0.1:$HUB_PORT
"$BIN" hub --addr "127.0.0.1:$HUB_PORT" --data "$WORK/hub" --token "$TOKEN" >"$WORK/hub.log" 2>&1 &
pids+=("$!")
wait_until 30 "the hub" curl -fs "$HUB_URL/api/info"
$PY gen "$WORK/units" "$REPOS" "$UNITS"
t=$(now)
(cd "$WORK/units" && ls) | xargs -P "$IMPORT_JOBS" -I{} "$BIN" hub import --space {} --url "$HUB_URL" \
  --token "$TOKEN" "$WORK/units/{}" >"$WORK/import.log" 2>&1 || { tail "$WORK/import.log" >&2; die "hub import failed"; }
IMPORT_SECS=$(python3 -c "import time; print(f'{time.time() - $t:.0f}')")
log "imported $((REPOS * UNITS)) units in ${IMPORT_SECS}s"

log "$REPOS ConfigHubRepositories (interval $CHR_INTERVAL) and Kustomizations (interval $KS_INTERVAL)"
kubectl create namespace "$NS" >/dev/null
kubectl create namespace "$APPS" >/dev/null
kubectl create secret generic confighub -n "$NS" --from-literal=token="$TOKEN" >/dev/null
$PY objects "$REPOS" "$NS" "$APPS" "$HUB_URL" "$CHR_INTERVAL" "$KS_INTERVAL" >"$WORK/objects.yaml"
kubectl create -f "$WORK/objects.yaml" >/dev/null

log "controller (release): cold start"
HTTP_PORT=$(free_port)
"$BIN" run --storage-path "$WORK/storage" --storage-addr "127.0.0.1:$(free_port)" \
  --http-addr "127.0.0.1:$HTTP_PORT" --log-format json ${CONCURRENT:+--concurrent "$CONCURRENT"} \
  >"$WORK/controller.log" 2>&1 &
CONTROLLER_PID=$!
pids+=("$CONTROLLER_PID")
T0=$(now)
cpu0_ctl=$(cpu_ticks "$CONTROLLER_PID"); cpu0_kc=$(cpu_ticks "$KC_PID")
ready_of() { kubectl get "$1" -n "$NS" -o json | $PY ready "$T0"; }
all_ready() { read -r n total _ < <(ready_of "$1"); ((n == total && total == REPOS)); }
POLL=5 wait_until 3600 "every ConfigHubRepository Ready" all_ready confighubrepositories
read -r _ _ CHR_LAST CHR_MEDIAN < <(ready_of confighubrepositories)
log "every repository Ready ${CHR_LAST}s after the start (median ${CHR_MEDIAN}s)"
POLL=5 wait_until 3600 "every Kustomization Ready" all_ready kustomizations
read -r _ _ KS_LAST KS_MEDIAN < <(ready_of kustomizations)
COLD_SECS=$(python3 -c "import time; print(time.time() - $T0)")
cold_ctl=$(( $(cpu_ticks "$CONTROLLER_PID") - cpu0_ctl )); cold_kc=$(( $(cpu_ticks "$KC_PID") - cpu0_kc ))
log "every Kustomization Ready ${KS_LAST}s after the start (median ${KS_MEDIAN}s)"

log "settling ${SETTLE}s, then a steady window of ${STEADY}s"
sleep "$SETTLE"
metrics() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | $PY metrics; }
metrics >"$WORK/metrics.before"
A=$(now); a_ctl=$(cpu_ticks "$CONTROLLER_PID"); a_kc=$(cpu_ticks "$KC_PID")
: >"$WORK/rss"
end=$((SECONDS + STEADY))
while ((SECONDS < end)); do
  kill -0 "$CONTROLLER_PID" 2>/dev/null || die "the controller exited; see $OUT/controller.log"
  echo "$(rss_kb "$CONTROLLER_PID") $(rss_kb "$KC_PID")" >>"$WORK/rss"
  sleep 5
done
B=$(now); b_ctl=$(cpu_ticks "$CONTROLLER_PID"); b_kc=$(cpu_ticks "$KC_PID")
metrics >"$WORK/metrics.after"
sleep 2 # the audit log is written in batches
$PY audit "$AUDIT" "$A" "$B" >"$WORK/audit.json"

mkdir -p "$OUT"
python3 - "$WORK" "$REPOS" "$UNITS" "$CHR_INTERVAL" "$KS_INTERVAL" "$STEADY" "$TICKS" \
  "$((b_ctl - a_ctl))" "$((b_kc - a_kc))" "$(python3 -c "print($B - $A)")" \
  "$(hwm_kb "$CONTROLLER_PID")" "$(hwm_kb "$KC_PID")" "$IMPORT_SECS" \
  "$CHR_LAST" "$CHR_MEDIAN" "$KS_LAST" "$KS_MEDIAN" "$cold_ctl" "$cold_kc" "$COLD_SECS" \
  "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
(work, repos, units, chr_iv, ks_iv, steady, ticks, ctl_t, kc_t, window, ctl_hwm, kc_hwm, import_s,
 chr_last, chr_med, ks_last, ks_med, cold_ctl, cold_kc, cold_s, cores, load) = sys.argv[1:]
repos, ticks, window = int(repos), int(ticks), float(window)
def read(name):
    return {k: int(v) for k, v in (l.split() for l in open(f"{work}/{name}"))}
before, after = read("metrics.before"), read("metrics.after")
d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
def secs(text):
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]
intervals = window / secs(chr_iv)
rss = [tuple(int(x) for x in l.split()) for l in open(f"{work}/rss") if len(l.split()) == 2]
mb = lambda kb: f"{kb / 1024:.1f} MB"
audit = json.load(open(f"{work}/audit.json"))
per_min = lambda n: n * 60 / window
ctl_cpu, kc_cpu = int(ctl_t) / ticks, int(kc_t) / ticks
reconciles = d.get("gotk_reconcile_duration_seconds_count", 0)
requests = d.get("requests", 0)
data_ops = {k: v for k, v in d.items() if k.startswith(("requests.", "bytes.")) and v}
print(f"# hack/bench-scale.sh {repos}  (UNITS={units} CHR_INTERVAL={chr_iv} KS_INTERVAL={ks_iv} STEADY={steady})\n")
print(f"{cores} cores, load average at the end {load}; hub import of {repos * int(units)} units: {import_s}s\n")
print("## Cold start (controller started with every object already there)\n")
print(f"- every ConfigHubRepository Ready: {chr_last} s after the start (median {chr_med} s)")
print(f"- every Kustomization Ready: {ks_last} s after the start (median {ks_med} s)")
print(f"- CPU until then ({float(cold_s):.0f} s): controller {int(cold_ctl) / ticks:.1f} s, "
      f"kustomize-controller {int(cold_kc) / ticks:.1f} s\n")
print(f"## Steady state ({window:.0f} s window, {intervals:.1f} repository intervals)\n")
print(f"- repository reconciles: {reconciles} ({reconciles / repos / intervals:.2f} per repository per interval)")
print(f"- ConfigHub requests: {requests} = {requests / max(reconciles, 1):.2f} per reconcile, "
      f"{requests / repos / intervals:.2f} per repository per interval; by operation and bytes: {data_ops}")
print(f"- unit data downloaded: {d.get('confighub_source_unit_downloads_total', 0)} units; "
      f"artifacts stored: {d.get('confighub_source_artifacts_stored_total', 0)}; drift passes: {d.get('confighub_drift_passes_total', 0)}")
print("- kube-apiserver requests per minute (audit log):")
for who, n in sorted(audit["clients"].items(), key=lambda kv: -kv[1]):
    top = sorted(audit["verbs"][who].items(), key=lambda kv: -kv[1])[:8]
    print(f"  - {who}: {per_min(n):.0f}/min ({', '.join(f'{k} {per_min(v):.0f}' for k, v in top)})")
ours = audit["clients"].get("confighub-source-controller", 0)
theirs = audit["clients"].get("kustomize-controller", 0)
print()
print("| in the steady window | confighub-source-controller | kustomize-controller | ratio (kc / ours) |")
print("|---|---|---|---|")
print(f"| CPU (% of one core) | {100 * ctl_cpu / window:.1f} % | {100 * kc_cpu / window:.1f} % | {kc_cpu / max(ctl_cpu, 1e-9):.2f} |")
mean = lambda i: statistics.mean(r[i] for r in rss)
print(f"| RSS mean | {mb(mean(0))} | {mb(mean(1))} | {mean(1) / mean(0):.2f} |")
print(f"| RSS peak (whole run, VmHWM) | {mb(int(ctl_hwm))} | {mb(int(kc_hwm))} | {int(kc_hwm) / int(ctl_hwm):.2f} |")
print(f"| kube-apiserver requests/min | {per_min(ours):.0f} | {per_min(theirs):.0f} | {theirs / max(ours, 1):.2f} |")
PY
echo "controller log lines at warn or error: $(grep -c '"level":"\(WARN\|ERROR\)"' "$WORK/controller.log" || true)" \
  | tee -a "$OUT/summary.md"
log "summary written to $OUT/summary.md"
