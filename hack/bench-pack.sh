#!/usr/bin/env bash
# Benchmarks `confighub-source-controller pack` against `tar | gzip -6` and Flux's own archiver
# (fluxcd/pkg/artifact/storage.Archive) on the same 10,000 generated unit files (~8 MB of YAML).
#
# Usage: [RUNS=20] hack/bench-pack.sh [units]   (default 10000 units, 20 timed runs of each command)
# Needs: cargo, go (for hack/flux-archive), python3, GNU tar, gzip; hyperfine if installed
# (falls back to a simple best-of-N loop with /usr/bin/time-style wall clock).
set -euo pipefail

UNITS="${1:-10000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/confighub-source-controller"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CACHE" "$WORK/units" "$WORK/flux-storage"

echo "== generating $UNITS units into $WORK/units"
python3 "$ROOT/hack/gen-units.py" "$WORK/units" "$UNITS"
cat "$WORK"/units/*.yaml | wc -c | awk '{printf "   %.2f MB of YAML (%s bytes)\n", $1/1e6, $1}'

echo "== building (release) pack and the Flux archiver"
(cd "$ROOT" && cargo build --release --quiet)
PACK="${CARGO_TARGET_DIR:-$ROOT/target}/release/confighub-source-controller"
(cd "$ROOT/hack/flux-archive" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOSUMDB=off \
  go build -trimpath -o "$CACHE/flux-archive" .)
FLUX="$CACHE/flux-archive"

cmd_pack="$PACK pack $WORK/units --out $WORK/pack.tar.gz --space bench"
cmd_tar="tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C $WORK/units -cf - . | gzip -6 -n > $WORK/tar.tar.gz"
cmd_flux="$FLUX $WORK/units $WORK/flux-storage"

echo "== timing (nproc=$(nproc))"
if command -v hyperfine >/dev/null; then
  # All three in one run, so the summary gives the ratios (the pipeline runs under `sh -c`, which
  # adds ~1 ms to it).
  hyperfine --warmup 2 --runs "${RUNS:-20}" -N --export-markdown "$WORK/hyperfine.md" \
    -n pack "$cmd_pack" -n 'tar | gzip -6' "sh -c '$cmd_tar'" -n flux-archive "$cmd_flux" \
    2>&1 | grep -v '^ *$' || true
  if command -v taskset >/dev/null; then
    # The same pack on one core: what the per-unit and gzip parallelism buys (output is identical).
    hyperfine --warmup 2 --runs 10 -N -n 'pack (1 core)' "taskset -c 0 $cmd_pack" 2>&1 | grep -v '^ *$' || true
  fi
else
  for c in "$cmd_pack" "$cmd_flux" "$cmd_tar"; do
    best=""
    for _ in 1 2 3 4 5; do
      s=$(date +%s.%N); bash -c "$c" >/dev/null; e=$(date +%s.%N)
      t=$(echo "$e - $s" | bc); if [ -z "$best" ] || (( $(echo "$t < $best" | bc) )); then best=$t; fi
    done
    echo "   best of 5: ${best}s  $c"
  done
fi

echo "== output sizes (bytes; pack adds provenance labels/annotations to every object, ~2.6 MB more YAML)"
bash -c "$cmd_pack" >/dev/null
bash -c "$cmd_tar"
bash -c "$cmd_flux" >/dev/null
printf '   pack          %s\n' "$(stat -c %s "$WORK/pack.tar.gz")"
printf '   tar|gzip -6   %s\n' "$(stat -c %s "$WORK/tar.tar.gz")"
printf '   flux-archive  %s\n' "$(stat -c %s "$WORK/flux-storage/bench/default/units/latest.tar.gz")"
echo "== output sizes on identical content (pack's stamped files, extracted, archived by each tool)"
mkdir -p "$WORK/stamped" "$WORK/flux-stamped"
tar -xzf "$WORK/pack.tar.gz" -C "$WORK/stamped"
"$FLUX" "$WORK/stamped" "$WORK/flux-stamped" >/dev/null
printf '   pack          %s\n' "$(stat -c %s "$WORK/pack.tar.gz")"
printf '   tar|gzip -6   %s\n' "$(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$WORK/stamped" -cf - . | gzip -6 -n | wc -c)"
printf '   flux-archive  %s\n' "$(stat -c %s "$WORK/flux-stamped/bench/default/units/latest.tar.gz")"
echo "== reproducibility"
"$PACK" pack "$WORK/units" --out "$WORK/pack2.tar.gz" --space bench >/dev/null
cmp "$WORK/pack.tar.gz" "$WORK/pack2.tar.gz" && echo "   two pack runs: identical"
"$FLUX" -untar "$WORK/pack.tar.gz" "$WORK/untarred" >/dev/null && echo "   Flux's extractor (fluxcd/pkg/tar.Untar) accepts the archive: $(ls "$WORK/untarred" | wc -l) files"
