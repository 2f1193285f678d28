#!/usr/bin/env bash
# Artifact serving (docs/benchmarks.md, issue 14 P6): the controller's artifact server
# (examples/artifact_serve.rs: the controller's router and `serve`, release build) against Go's
# http.FileServer as Flux's source-controller runs it (hack/http-bench), on the same two artifacts, from
# the same load generator (hack/http-bench load: keep-alive clients on loopback, every response checked
# for status 200 and its length). The controller's server runs twice: as shipped (files kept in memory,
# `--storage-cache-mib` 64) and with that cache off ("uncached": every request reads the disk). Cells
# alternate the order of the servers; prints a table with ratios.
#
#   hack/bench-serve.sh                  # 10 s per cell, clients 1 and 50, one round
#   SECONDS_PER_CELL=5 CLIENTS="1 50" ROUNDS=2 hack/bench-serve.sh
#   BURNERS=6 hack/bench-serve.sh        # six busy-loop processes compete for the cores throughout
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${SECONDS_PER_CELL:-10}
clients=${CLIENTS:-1 50}
rounds=${ROUNDS:-1}
burners=${BURNERS:-0}
target=${CARGO_TARGET_DIR:-target}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/confighub-source-controller/tools
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building (release) the controller and its artifact server example, and hack/http-bench" >&2
cargo build --release --locked --bin confighub-source-controller --example artifact_serve >&2
mkdir -p "$cache"
(cd hack/http-bench && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$cache/http-bench" .)
bench=$cache/http-bench

echo "== the artifacts: one tiny unit, and the 10,000 units of hack/bench-pack.sh, packed by the controller" >&2
mkdir -p "$work/one" "$work/files/space" && printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n' >"$work/one/a.yaml"
python3 hack/gen-units.py "$work/many" 10000
"$target/release/confighub-source-controller" pack "$work/one" --out "$work/files/space/small.tar.gz" --space bench >/dev/null
"$target/release/confighub-source-controller" pack "$work/many" --out "$work/files/space/large.tar.gz" --space bench >/dev/null

# start NAME CMD...: runs a server on a free port and waits for its "serving DIR on ADDR" line.
start() {
  local name=$1
  shift
  "$@" 2>"$work/$name.log" &
  pids+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 1 100); do
    grep -q ' on ' "$work/$name.log" && break
    sleep 0.1
  done
  eval "${name}_addr=$(awk '/ on /{print $NF; exit}' "$work/$name.log")"
}
start controller "$target/release/examples/artifact_serve" "$work/files" 127.0.0.1:0
start go "$bench" fileserver "$work/files" 127.0.0.1:0
start uncached "$target/release/examples/artifact_serve" "$work/files" 127.0.0.1:0 0
servers="uncached controller go"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)

for _ in $(seq 1 "$burners"); do
  sh -c 'while :; do :; done' &
  pids+=($!)
done
echo "== $rounds round(s), $burners busy loop(s), ${secs} s per cell, nproc=$(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
results=$work/results
: >"$results"
n=0
for round in $(seq 1 "$rounds"); do
  for file in small large; do
    size=$(stat -c %s "$work/files/space/$file.tar.gz")
    for c in $clients; do
      # Alternate which server goes first, so neither always runs right after the other.
      order=$servers
      ((n++ % 2)) && order=$(tr ' ' '\n' <<<"$servers" | tac | tr '\n' ' ')
      for server in $order; do
        addr_var=${server}_addr pid_var=${server}_pid
        before=$(cpu "${!pid_var}")
        line=$("$bench" load -url "http://${!addr_var}/space/$file.tar.gz" -size "$size" -c "$c" -d "${secs}s")
        after=$(cpu "${!pid_var}")
        cpu_s=$(awk -v t="$tick" -v a="$before" -v b="$after" 'BEGIN{printf "%.2f", (b - a) / t}')
        echo "$round $file $size $c $server $line cpu_s=$cpu_s" | tee -a "$results" >&2
      done
    done
  done
done

# One row per artifact and client count: medians over rounds (one round: the value itself).
python3 - "$results" <<'EOF'
import collections, statistics, sys
cells = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split("=") for x in f[5:])
    key = (f[1], int(f[2]), int(f[3]))
    for k, v in kv.items():
        cells[key][(f[4], k)].append(float(v))
m = lambda cell, server, k: statistics.median(cell[(server, k)])
print("| artifact | clients | controller req/s | Go req/s | **ratio** | uncached req/s (ratio) | controller p50 / p99 ms | Go p50 / p99 ms | CPU s controller / Go | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (file, size, c), cell in cells.items():
    rc, rg = m(cell, "controller", "rps"), m(cell, "go", "rps")
    ru = m(cell, "uncached", "rps")
    print(f"| {file} ({size:,} B) | {c} | {rc:,.0f} | {rg:,.0f} | **{rc / rg:.2f}** | {ru:,.0f} ({ru / rg:.2f}) | "
          f"{m(cell, 'controller', 'p50_ms'):.2f} / {m(cell, 'controller', 'p99_ms'):.2f} | "
          f"{m(cell, 'go', 'p50_ms'):.2f} / {m(cell, 'go', 'p99_ms'):.2f} | "
          f"{m(cell, 'controller', 'cpu_s'):.1f} / {m(cell, 'go', 'cpu_s'):.1f} | "
          f"{sum(sum(v) for (_, k), v in cell.items() if k == 'errors'):.0f} |")
EOF
