#!/usr/bin/env bash
# The soak (docs/reliability.md, "Faults from ConfigHub"): a controller shard reconciles 5
# ConfigHubRepositories (interval 5s), applied by kustomize-controller on the real control plane,
# against `hub --fault-rate RATE --fault-seed SEED` for DURATION seconds while units are edited every
# 3 s. Every second each served artifact is checked against the digest in its status and each Ready
# condition sampled; then faults stop (PUT /admin/faults) and every repository must serve its last
# edit within one interval plus spec.timeout. Prints one summary line. CI runs the same test for 60 s.
#
#   hack/soak.sh [DURATION_SECONDS] [FAULT_RATE] [SEED]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-600}
rate=${2:-0.5}
seed=${3:-$RANDOM$RANDOM}
bash hack/testbin.sh >/dev/null
log=${TMPDIR:-/tmp}/soak-$seed.log
echo "soak: full output in $log"
SOAK_SECONDS=$seconds SOAK_RATE=$rate SOAK_SEED=$seed cargo test --locked --test e2e soak:: -- --nocapture 2>&1 |
  tee "$log" | grep -E "^soak|^test result|panicked|serving gaps|recovered"
