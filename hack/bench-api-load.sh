#!/usr/bin/env bash
# How many requests an idle controller makes to kube-apiserver: counted by the API server itself
# (apiserver_request_total), first for a window without the controller (kustomize-controller alone),
# then for the same window with it running, on the dev cluster.
#
# Usage: hack/bench-api-load.sh [controller-binary] [seconds]   (defaults: release build, 60)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/confighub-source-controller}"
SECS="${2:-60}"
[[ -x "$BIN" ]] || (cd "$ROOT" && cargo build --release --quiet)
WORK="$(mktemp -d)"
pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$WORK"' EXIT

eval "$(bash "$ROOT/hack/dev-cluster.sh" up 2>/dev/null)"
export KUBECONFIG
KUBECTL="$(cat "$(dirname "$KUBECONFIG")/testbin-path")/kubectl"

# Requests by verb and resource, summed over codes and scopes.
snapshot() {
  "$KUBECTL" get --raw /metrics | awk '
    /^apiserver_request_total\{/ {
      verb = ""; res = ""
      if (match($0, /verb="[A-Z]+"/)) verb = substr($0, RSTART + 6, RLENGTH - 7)
      if (match($0, /resource="[a-z]+"/)) res = substr($0, RSTART + 10, RLENGTH - 11)
      n[verb " " res] += $NF
    }
    END { for (k in n) print k, n[k] }' | sort
}

window() {
  snapshot > "$WORK/before"
  sleep "$SECS"
  snapshot > "$WORK/after"
  join -a 2 -e 0 -o 0,1.2,2.2 <(awk '{print $1"/"$2, $3}' "$WORK/before" | sort) \
    <(awk '{print $1"/"$2, $3}' "$WORK/after" | sort) |
    awk '{d = $3 - $2; if (d > 0) printf "   %-40s %6d\n", $1, d}'
}

echo "== ${SECS}s without the controller (kustomize-controller and the API server's own traffic)"
window | tee "$WORK/without"
echo "== ${SECS}s with the controller idle (no ConfigHubRepository): $BIN"
"$BIN" run --storage-path "$WORK/storage" --storage-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  --log-format json >"$WORK/controller.log" 2>&1 &
pid=$!
sleep 5 # start-up: CRD discovery, the initial lists and watches
window | tee "$WORK/with"
echo "== LIST requests per minute attributable to the controller"
for res in confighubrepositories kustomizations; do
  w=$(awk -v r="LIST/$res" '$1 == r {print $2}' "$WORK/with"); w=${w:-0}
  wo=$(awk -v r="LIST/$res" '$1 == r {print $2}' "$WORK/without"); wo=${wo:-0}
  echo "   $res: $(( (w - wo) * 60 / SECS ))"
done
