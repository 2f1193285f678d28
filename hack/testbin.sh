#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kubectl, kustomize-controller, the flux CLI and helm from their Go modules,
# collects the Flux CRDs kustomize-controller needs, and prints the folder holding bin/ and crds/.
# Everything is cached by version under $TESTBIN_CACHE (default ~/.cache/confighub-source-controller),
# outside the source tree, so a warm run takes seconds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache=${TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/confighub-source-controller}
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kc-${KUSTOMIZE_CONTROLLER_VERSION}_sc-${SOURCE_CONTROLLER_VERSION}_flux-${FLUX_VERSION}_helm-${HELM_VERSION}"
out="$cache/testbin/$key"
builds="$cache/builds"

log() { echo "testbin: $*" >&2; }
die() { echo "testbin: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not installed; the end-to-end tests need Go to build the control plane"

if [[ -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$builds"

# module_dir MODULE@VERSION → folder of that module in the Go module cache.
module_dir() {
  go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}
module_gomod() {
  go mod download -json "$1" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p'
}

# build_once NAME VERSION FUNCTION: runs FUNCTION in a fresh work folder unless NAME@VERSION is built.
build_once() {
  local name=$1 version=$2 fn=$3
  local dest="$builds/$name-$version"
  if [[ -x "$dest/$name" ]]; then return 0; fi
  local work
  work=$(mktemp -d "$builds/.work-$name-XXXXXX")
  log "building $name $version (cold builds take minutes on 2 cores)"
  local start=$SECONDS
  (cd "$work" && "$fn" "$version" "$work/$name") || { rm -rf "$work"; die "building $name $version failed"; }
  mkdir -p "$dest"
  mv "$work/$name" "$dest/$name"
  rm -rf "$work"
  log "built $name $version in $((SECONDS - start))s"
}

build_etcd() {
  local v=$1 target=$2
  go mod init testbin/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$v" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$target" go.etcd.io/etcd/server/v3
}

# kube-apiserver and kubectl share a wrapper module: k8s.io/kubernetes replaces its staging modules with
# ./staging paths, so the wrapper points each one at the published v0.N.M module instead.
kube_wrapper() {
  local v=$1
  local minor=${v#v1.}; minor=${minor%%.*}
  local staging_version="v0.${v#v1.}"
  go mod init testbin/kube >/dev/null 2>&1
  local gomod
  gomod=$(module_gomod "k8s.io/kubernetes@$v")
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$v"
  local mods
  mods=$(sed -n 's#^\s*\(k8s.io/[A-Za-z0-9._-]*\) => ./staging/.*#\1#p' "$gomod")
  [[ -n "$mods" ]] || die "found no staging replaces in k8s.io/kubernetes@$v go.mod"
  local args=()
  for m in $mods; do args+=("-replace=$m=$m@$staging_version"); done
  go mod edit "${args[@]}" "-require=k8s.io/kubernetes@$v"
  local debug
  debug=$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod")
  if [[ -n "$debug" ]]; then go mod edit "-godebug=$debug"; fi
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kubectl@$v" >/dev/null
  KUBE_LDFLAGS="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    KUBE_LDFLAGS+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
}
build_kube_apiserver() {
  kube_wrapper "$1"
  go build -trimpath -tags=selinux,notest -ldflags "$KUBE_LDFLAGS" -o "$2" k8s.io/kubernetes/cmd/kube-apiserver
}
build_kubectl() {
  kube_wrapper "$1"
  go build -trimpath -tags=selinux,notest -ldflags "$KUBE_LDFLAGS" -o "$2" k8s.io/kubernetes/cmd/kubectl
}

# kustomize-controller: its own go.mod and go.sum, minus the local ./api replace (that module is
# published at the same tag).
build_kustomize_controller() {
  local v=$1 target=$2 src
  src=$(module_dir "github.com/fluxcd/kustomize-controller@$v")
  [[ -d "$src" ]] || die "could not download kustomize-controller@$v"
  cp -r "$src/." src && chmod -R u+w src && cd src
  go mod edit -dropreplace=github.com/fluxcd/kustomize-controller/api \
    "-require=github.com/fluxcd/kustomize-controller/api@$v"
  go build -trimpath -ldflags "-s -w" -o "$target" .
}

# flux CLI: embeds generated manifests that the module zip lacks; one placeholder lets it build.
# install/bootstrap won't work with it, get/trace/tree/diff/reconcile do.
build_flux() {
  local v=$1 target=$2 src
  src=$(module_dir "github.com/fluxcd/flux2/v2@$v")
  [[ -d "$src" ]] || die "could not download flux2@$v"
  cp -r "$src/." src && chmod -R u+w src && cd src
  mkdir -p cmd/flux/manifests
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: placeholder\n' > cmd/flux/manifests/placeholder.yaml
  go build -trimpath -ldflags "-s -w -X main.VERSION=${v#v}" -o "$target" ./cmd/flux
}

# helm (chart lint/template in tests/packaging.rs and the e2e RBAC): built from its own go.mod and go.sum,
# as its Makefile does, with the version stamped the same way.
build_helm() {
  local v=$1 target=$2 src major
  major=${v%%.*}
  src=$(module_dir "helm.sh/helm/$major@$v")
  [[ -d "$src" ]] || die "could not download helm.sh/helm/$major@$v"
  cp -r "$src/." src && chmod -R u+w src && cd src
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$v -X helm.sh/helm/$major/internal/version.gitTreeState=clean" \
    -o "$target" ./cmd/helm
}

build_once etcd "$ETCD_VERSION" build_etcd
build_once kube-apiserver "$KUBERNETES_VERSION" build_kube_apiserver
build_once kubectl "$KUBERNETES_VERSION" build_kubectl
build_once kustomize-controller "$KUSTOMIZE_CONTROLLER_VERSION" build_kustomize_controller
build_once flux "$FLUX_VERSION" build_flux
build_once helm "$HELM_VERSION" build_helm

tmp=$(mktemp -d "$cache/testbin/.assemble-XXXXXX" 2>/dev/null || { mkdir -p "$cache/testbin"; mktemp -d "$cache/testbin/.assemble-XXXXXX"; })
mkdir -p "$tmp/bin" "$tmp/crds"
ln -s "$builds/etcd-$ETCD_VERSION/etcd" "$tmp/bin/etcd"
ln -s "$builds/kube-apiserver-$KUBERNETES_VERSION/kube-apiserver" "$tmp/bin/kube-apiserver"
ln -s "$builds/kubectl-$KUBERNETES_VERSION/kubectl" "$tmp/bin/kubectl"
ln -s "$builds/kustomize-controller-$KUSTOMIZE_CONTROLLER_VERSION/kustomize-controller" "$tmp/bin/kustomize-controller"
ln -s "$builds/flux-$FLUX_VERSION/flux" "$tmp/bin/flux"
ln -s "$builds/helm-$HELM_VERSION/helm" "$tmp/bin/helm"

kc=$(module_dir "github.com/fluxcd/kustomize-controller@$KUSTOMIZE_CONTROLLER_VERSION")
sc=$(module_dir "github.com/fluxcd/source-controller@$SOURCE_CONTROLLER_VERSION")
cp "$kc/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$tmp/crds/"
for kind in gitrepositories ocirepositories buckets externalartifacts; do
  cp "$sc/config/crd/bases/source.toolkit.fluxcd.io_$kind.yaml" "$tmp/crds/"
done
chmod u+w "$tmp/crds"/*
touch "$tmp/.complete"
rm -rf "$out"
mv "$tmp" "$out"
echo "$out"
