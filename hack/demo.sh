#!/usr/bin/env bash
# The demo, offline: a real local control plane (etcd, kube-apiserver, Flux's kustomize-controller), a local
# ConfigHub-compatible hub loaded with examples/demo/units, and the controller. It tells the whole story:
# units in the hub become objects in namespace `demo`; a unit edited in the hub arrives; an out-of-band edit
# becomes a drift record and a fix unit in the hub; `trace` walks an object back to its unit.
#
#   hack/demo.sh        run it (stays up; Ctrl-C stops the controller and the hub)
#   hack/demo.sh down   stop everything it started, the control plane included
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
state=${XDG_CACHE_HOME:-$HOME/.cache}/confighub-source-controller/demo

if [[ ${1:-} == down ]]; then
  if [[ -f $state/pids ]]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$state/pids"
    rm -f "$state/pids"
  fi
  bash hack/dev-cluster.sh down
  echo "demo stopped"
  exit 0
fi

mkdir -p "$state"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
step() { echo; echo "==> $*"; }
# wait_until SECONDS WHAT COMMAND...: polls COMMAND every half second.
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.5
  done
}

step "control plane (first run builds it from Go modules: minutes)"
eval "$(bash hack/dev-cluster.sh up 2>/dev/null)"
export PATH="$(bash hack/testbin.sh)/bin:$PATH"

step "building the controller"
cargo build --quiet
bin=$root/target/debug/confighub-source-controller

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "$state/pids"' EXIT

export HUB_TOKEN=demo-token
hub_port=$(free_port)
export HUB_URL=http://127.0.0.1:$hub_port
rm -rf "$state/hub" "$state/storage" "$state/units"
"$bin" hub --addr "127.0.0.1:$hub_port" --data "$state/hub" --token "$HUB_TOKEN" >"$state/hub.log" 2>&1 &
pids+=($!)
wait_until 10 "the hub" curl -fs "$HUB_URL/api/info"
step "1/5 units in ConfigHub: importing examples/demo/units into space 'demo' on $HUB_URL"
cp -r examples/demo/units "$state/units"
"$bin" hub import --space demo --url "$HUB_URL" --token "$HUB_TOKEN" "$state/units"

http_port=$(free_port); storage_port=$(free_port)
"$bin" run --storage-path "$state/storage" --storage-addr "127.0.0.1:$storage_port" \
  --http-addr "127.0.0.1:$http_port" --log-format text >"$state/controller.log" 2>&1 &
pids+=($!)
printf '%s\n' "${pids[@]}" >"$state/pids"
api=http://127.0.0.1:$http_port/api/v1

step "2/5 objects in the cluster: a ConfigHubRepository and a Flux Kustomization"
envsubst < examples/demo/cluster.yaml.tmpl | kubectl apply -f -
kubectl wait --for=condition=Ready chr/demo -n demo --timeout=120s
kubectl wait --for=condition=Ready kustomization/demo -n demo --timeout=120s
kubectl get chr -n demo
flux get sources external -n demo
kubectl get configmap,deployment -n demo -L confighub.com/UnitSlug

step "3/5 a unit edited in ConfigHub arrives: settings.yaml, color blue -> green"
sed -i 's/color: blue/color: green-edited-in-confighub/' "$state/units/settings.yaml"
"$bin" hub import --space demo --url "$HUB_URL" --token "$HUB_TOKEN" "$state/units"
has_edit() { kubectl get configmap settings -n demo -o yaml | grep -q green-edited-in-confighub; }
wait_until 90 "the edit in the cluster" has_edit
echo "configmap/settings now carries the edit:"
kubectl get configmap settings -n demo -o jsonpath='{.data}'; echo

step "4/5 an out-of-band edit: kubectl scale deployment/web --replicas=3"
kubectl scale deployment/web -n demo --replicas=3
has_fix() { curl -fs "$api/drift-records/Deployment:demo:web" | grep -q '"fix_unit":"'; }
wait_until 60 "the drift record and its fix unit" has_fix
curl -fs "$api/drift-records/Deployment:demo:web" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("drift record %s: %s %s by %s (seen by the %s)" % (r["id"], r["types"], r["severity"], r["actor"], r["source"]))
print("fix unit proposed in ConfigHub: demo-drift-fixes/%s" % r["fix_unit"])
print("suggestion: %s" % r["suggestion"])'
kubectl get chr demo -n demo -o jsonpath='{range .status.conditions[?(@.type=="Drifted")]}Drifted={.status} ({.reason}): {.message}{"\n"}{end}'

step "5/5 trace: from the object back to its ConfigHub unit"
CONFIGHUB_TOKEN=$HUB_TOKEN "$bin" trace deployment/web -n demo --drift-url "http://127.0.0.1:$http_port" || true

cat <<MSG

Try next, in another shell:
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH
  $bin trace configmap/settings -n demo --drift-url http://127.0.0.1:$http_port
  $bin trace --all -n demo
  curl -s $api/drift-records?status=active          # the drift API
  kubectl get chr -n demo -w                         # Ready and Drifted
  # edit $state/units/*.yaml, then: $bin hub import --space demo --url $HUB_URL --token $HUB_TOKEN $state/units
Controller log: $state/controller.log · metrics: http://127.0.0.1:$http_port/metrics
Ctrl-C stops the controller and the hub; hack/demo.sh down stops everything.
MSG
wait
