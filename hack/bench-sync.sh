#!/usr/bin/env bash
# Benchmarks the source pipeline against a local hub holding N generated units (default 10,000, ~8 MB):
# the full first sync (empty cache) and a reconcile of the unchanged space, with the ConfigHub requests and
# bytes each one costs, and the peak RSS of the whole run.
#
# Usage: hack/bench-sync.sh [units]
#   ROUNDS=<n>         rounds of the benchmark (default 2)
#   OLD_BIN_DIR=<dir>  also runs <dir>/sync_bench (an older build, e.g. of the commit before a change)
#                      against the same hub and data first, for a side-by-side comparison in one run.
set -euo pipefail
UNITS="${1:-10000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
HUB_PID=""
trap '[[ -n $HUB_PID ]] && kill $HUB_PID 2>/dev/null; rm -rf "$WORK"' EXIT

python3 "$ROOT/hack/gen-units.py" "$WORK/units" "$UNITS"
du -sb "$WORK/units" | awk '{printf "== %.1f MB of YAML in '"$UNITS"' units\n", $1/1e6}'

(cd "$ROOT" && cargo build --release --quiet --bin confighub-source-controller --example sync_bench)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/confighub-source-controller"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" hub --addr "127.0.0.1:$PORT" --data "$WORK/hub" --token bench >"$WORK/hub.out" 2>"$WORK/hub.err" &
HUB_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/api/info" >/dev/null && break; sleep 0.1; done

start=$(date +%s.%N)
"$BIN" hub import --space bench --url "http://127.0.0.1:$PORT" --token bench "$WORK/units" >/dev/null
echo "== hub import of $UNITS units: $(echo "$(date +%s.%N) - $start" | bc | xargs printf '%.1f')s"

# Flush the import's writes first, so the sync is not timed against the hub's disk writeback.
sync
run() { # label, sync_bench binary
  echo "== $1: pipeline (fetch → build → store), release build"
  /usr/bin/time -v "$2" "http://127.0.0.1:$PORT" bench bench 2>"$WORK/time.txt"
  grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$WORK/time.txt" | sed 's/^\s*/   /'
}
# Alternating rounds, so neither build always runs on a warmer hub.
for round in $(seq 1 "${ROUNDS:-2}"); do
  if [[ -n "${OLD_BIN_DIR:-}" ]]; then
    run "round $round, before ($OLD_BIN_DIR)" "$OLD_BIN_DIR/sync_bench"
  fi
  run "round $round, now" "$TARGET/release/examples/sync_bench"
done
