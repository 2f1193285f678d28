#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: prerequisites, the real control plane binaries,
# formatting, lints, unit tests and end-to-end tests. Fails loudly; never skips the end-to-end tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { echo; echo "==> $*"; }
start=$SECONDS

step "prerequisites"
missing=()
for tool in go cargo curl openssl python3 setpriv; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
# A real PostgreSQL server for the drift store's tests (tests/e2e/support/postgres.rs starts its own).
if ! command -v initdb >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgres)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    pkgs=()
    for t in "${missing[@]}"; do
      case $t in
        curl|openssl|python3) pkgs+=("$t") ;;
        setpriv) pkgs+=(util-linux) ;;
        postgres) pkgs+=(postgresql) ;;
        *) echo "ERROR: $t is required and cannot be installed by this script" >&2; exit 1 ;;
      esac
    done
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
  else
    echo "ERROR: missing tools: ${missing[*]}" >&2
    exit 1
  fi
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

step "control plane binaries (etcd, kube-apiserver, kubectl, kustomize-controller, flux, helm)"
testbin=$(bash hack/testbin.sh) || { echo "ERROR: building the test control plane failed; end-to-end tests cannot run" >&2; exit 1; }
echo "cached in $testbin"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (unit and end-to-end)"
# The end-to-end tests mostly wait on the cluster, so run more of them at once than there are cores.
cargo test --all-targets --locked -- --test-threads 8

echo
echo "==> all checks passed in $((SECONDS - start))s"
