#!/usr/bin/env bash
# The crash loop (docs/reliability.md): a controller killed with SIGKILL at random moments while it
# writes artifacts, the unit cache and the drift database, RUNS times (default 200), against the real
# control plane. After every kill every stored file is checked against its digest and the drift
# database against SQLite's integrity check; after every restart the served artifact must match its
# digest and hold the last edit. CI runs the same test with 6 runs.
#
#   hack/crash-loop.sh [RUNS] [SEED]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-200}
seed=${2:-$RANDOM$RANDOM}
bash hack/testbin.sh >/dev/null
CRASH_RUNS=$runs CRASH_SEED=$seed cargo test --locked --test e2e crash::kill_9 -- --nocapture 2>&1 |
  grep -E "^crash loop|^test result|panicked|torn" 
