#!/usr/bin/env bash
# 60 keep-alive requests of one URL by one curl (one connection); prints how many took over 30 ms and
# the mean. Used to measure the artifact server with one client: see docs/benchmarks.md.
set -euo pipefail
url=$1
args=()
for i in $(seq 1 60); do args+=(-o /dev/null -w "%{time_total}\n" "$url"); done
curl -s "${args[@]}" | awk '$1>0.03{slow++} {n++; s+=$1} END{printf "slow(>30ms) %d of %d, mean %.2f ms\n", slow, n, s/n*1000}'
