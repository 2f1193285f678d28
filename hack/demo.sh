#!/usr/bin/env bash
# The demo, offline: a real local control plane (etcd, kube-apiserver, Flux's kustomize-controller), a local
# ConfigHub-compatible hub loaded with examples/demo/units, and the controller turning that space into
# objects in namespace `demo`. Ctrl-C stops the controller and the hub; `hack/dev-cluster.sh down` the cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
state=${XDG_CACHE_HOME:-$HOME/.cache}/confighub-source-controller/demo
mkdir -p "$state"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "==> control plane (first run builds it from Go modules: minutes)"
eval "$(bash hack/dev-cluster.sh up 2>/dev/null)"
export PATH="$(bash hack/testbin.sh)/bin:$PATH"

echo "==> building the controller"
cargo build --quiet
bin=$root/target/debug/confighub-source-controller

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

export HUB_TOKEN=demo-token
hub_port=$(free_port)
export HUB_URL=http://127.0.0.1:$hub_port
"$bin" hub --addr "127.0.0.1:$hub_port" --data "$state/hub" --token "$HUB_TOKEN" >"$state/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fs "$HUB_URL/api/info" >/dev/null && break; sleep 0.1; done
echo "==> hub on $HUB_URL, importing examples/demo/units into space 'demo'"
"$bin" hub import --space demo --url "$HUB_URL" --token "$HUB_TOKEN" examples/demo/units

http_port=$(free_port); storage_port=$(free_port)
"$bin" run --storage-path "$state/storage" --storage-addr "127.0.0.1:$storage_port" \
  --http-addr "127.0.0.1:$http_port" --log-format text >"$state/controller.log" 2>&1 &
pids+=($!)

echo "==> applying the ConfigHubRepository and the Kustomization"
envsubst < examples/demo/cluster.yaml.tmpl | kubectl apply -f -
kubectl wait --for=condition=Ready chr/demo -n demo --timeout=120s
kubectl wait --for=condition=Ready kustomization/demo -n demo --timeout=120s
echo
kubectl get chr -n demo
echo
flux get sources external -n demo
echo
kubectl get configmap,deployment,service -n demo -L confighub.com/UnitSlug
cat <<MSG

The objects above came from ConfigHub units. Try, in another shell:
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH
  # edit examples/demo/units/settings.yaml, then push it to the hub:
  $bin hub import --space demo --url $HUB_URL --token $HUB_TOKEN examples/demo/units
  kubectl get configmap settings -n demo -o yaml     # the new revision, within ~10s
  flux trace configmap settings -n demo               # back to the ConfigHubRepository
Controller log: $state/controller.log · metrics: http://127.0.0.1:$http_port/metrics
Ctrl-C to stop the controller and the hub.
MSG
wait
