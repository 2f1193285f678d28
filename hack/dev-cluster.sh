#!/usr/bin/env bash
# A real local control plane without Docker: etcd + kube-apiserver + kustomize-controller (ExternalArtifact
# gate on), built by hack/testbin.sh, on free loopback ports, with the Flux CRDs and ours installed.
#
#   hack/dev-cluster.sh up      start in the background and print the `export KUBECONFIG=...` line
#   hack/dev-cluster.sh env     print the `export KUBECONFIG=...` line of the running cluster
#   hack/dev-cluster.sh down    stop it and remove its state
#   hack/dev-cluster.sh start DIR   (used by `up` and the Rust tests) run in the foreground with state in DIR;
#                               prints `READY <kubeconfig>` once usable; stops everything on exit or signal.
#   env DEV_CLUSTER_AUDIT=1     the kube-apiserver writes an audit log (level Metadata, one line per request,
#                               with its user agent) to logs/audit.log, so benchmarks can count requests
#                               per client (hack/bench-scale.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
state=${DEV_CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/confighub-source-controller/dev-cluster}

die() { echo "dev-cluster: ERROR: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for URL SECONDS NAME LOG [CURL_ARGS...]: polls until URL answers 200.
wait_for() {
  local url=$1 secs=$2 name=$3 log=$4; shift 4
  for _ in $(seq 1 $((secs * 5))); do
    if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "dev-cluster: $name did not become ready within ${secs}s; last lines of $log:" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

certs() {
  local dir=$1
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=dev-cluster-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 \
      -extfile ext.cnf 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

start() {
  local dir=$1
  command -v openssl >/dev/null || die "openssl is required"
  command -v curl >/dev/null || die "curl is required"
  local testbin
  testbin=$(bash "$here/testbin.sh") || die "could not build the control plane binaries (see above)"
  local bin="$testbin/bin"
  rm -rf "$dir" && mkdir -p "$dir/logs"
  dir=$(cd "$dir" && pwd)
  local pids=()
  cleanup() {
    trap - EXIT INT TERM
    # Stop in reverse start order; anything still running after 5s is killed.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    for _ in $(seq 1 25); do
      local alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.2
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
  }
  trap cleanup EXIT
  trap 'exit 143' INT TERM

  # Every child dies with this script, even when it is killed outright.
  spawn() { setpriv --pdeathsig KILL -- "$@" & pids+=($!); }

  certs "$dir/pki"
  local token
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,admin,admin,\"system:masters\"" > "$dir/pki/tokens.csv"

  local audit=()
  if [[ ${DEV_CLUSTER_AUDIT:-0} == 1 ]]; then
    printf '%s\n' 'apiVersion: audit.k8s.io/v1' 'kind: Policy' 'omitStages: [RequestReceived]' \
      'rules:' '- level: Metadata' > "$dir/audit-policy.yaml"
    audit=(--audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/logs/audit.log"
      --audit-log-maxsize=0 --audit-log-mode=batch)
  fi
  local etcd_port etcd_peer api_port
  etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)
  spawn "$bin/etcd" --data-dir="$dir/etcd" --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" --listen-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="default=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync=true --log-level=warn >"$dir/logs/etcd.log" 2>&1
  wait_for "http://127.0.0.1:$etcd_port/health" 60 etcd "$dir/logs/etcd.log"

  # The kube-apiserver can be stopped and started again on the same port, certificates and etcd
  # (SIGUSR1 stops it, SIGUSR2 starts it; "$dir/apiserver" says which state it is in): the
  # apiserver-restart test (tests/ha) uses it.
  api_pid=
  start_apiserver() {
    spawn "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" --cert-dir="$dir/pki" \
      --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
      --secure-port="$api_port" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
      --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
      --disable-admission-plugins=ServiceAccount --authorization-mode=RBAC \
      --token-auth-file="$dir/pki/tokens.csv" \
      --service-account-issuer="https://127.0.0.1:$api_port/" \
      --service-account-key-file="$dir/pki/sa.pub" --service-account-signing-key-file="$dir/pki/sa.key" \
      --endpoint-reconciler-type=none "${audit[@]}" >>"$dir/logs/kube-apiserver.log" 2>&1
    api_pid=$!
    wait_for "https://127.0.0.1:$api_port/readyz" 120 kube-apiserver "$dir/logs/kube-apiserver.log" \
      --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" || return 1
    echo running > "$dir/apiserver"
  }
  stop_apiserver() {
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    local kept=() p
    for p in "${pids[@]}"; do [[ $p == "$api_pid" ]] || kept+=("$p"); done
    pids=("${kept[@]}")
    echo stopped > "$dir/apiserver"
  }
  start_apiserver || exit 1

  local kubeconfig="$dir/kubeconfig"
  cat > "$kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 < "$dir/pki/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: dev
  context: {cluster: dev, user: admin, namespace: default}
current-context: dev
KCFG
  chmod 600 "$kubeconfig"
  export KUBECONFIG="$kubeconfig"

  "$bin/kubectl" apply --server-side -f "$testbin/crds/" >"$dir/logs/crds.log" 2>&1 \
    || { cat "$dir/logs/crds.log" >&2; die "installing the Flux CRDs failed"; }
  "$bin/kubectl" apply --server-side -f "$root/crds/" >>"$dir/logs/crds.log" 2>&1 \
    || { cat "$dir/logs/crds.log" >&2; die "installing the project's CRDs failed"; }
  "$bin/kubectl" wait --for=condition=Established --timeout=60s crd --all >>"$dir/logs/crds.log" 2>&1 \
    || { cat "$dir/logs/crds.log" >&2; die "CRDs did not become established"; }

  local kc_metrics kc_health
  kc_metrics=$(free_port); kc_health=$(free_port)
  spawn "$bin/kustomize-controller" --feature-gates=ExternalArtifact=true --watch-all-namespaces=true \
    --enable-leader-election=false --metrics-addr="127.0.0.1:$kc_metrics" \
    --health-addr="127.0.0.1:$kc_health" --events-addr= --log-level=info \
    >"$dir/logs/kustomize-controller.log" 2>&1
  wait_for "http://127.0.0.1:$kc_health/readyz" 60 kustomize-controller "$dir/logs/kustomize-controller.log"

  echo "$testbin/bin" > "$dir/testbin-path"
  echo $$ > "$dir/pid"
  local stop_requested=0 start_requested=0
  trap 'stop_requested=1' USR1
  trap 'start_requested=1' USR2
  echo "READY $kubeconfig"
  # Stay in the foreground; if any component exits (other than a kube-apiserver stopped on request),
  # stop the rest. A trapped signal interrupts `wait`.
  while :; do
    wait -n "${pids[@]}" || true
    if ((stop_requested)); then
      stop_requested=0
      if [[ $(cat "$dir/apiserver") == running ]]; then stop_apiserver; fi
      continue
    fi
    if ((start_requested)); then
      start_requested=0
      if [[ $(cat "$dir/apiserver") == stopped ]]; then start_apiserver || break; fi
      continue
    fi
    break
  done
  echo "dev-cluster: a component exited; stopping (logs in $dir/logs)" >&2
  exit 1
}

case "${1:-}" in
  start)
    [[ -n "${2:-}" ]] || die "usage: $0 start DIR"
    start "$2"
    ;;
  up)
    if [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      echo "export KUBECONFIG=$state/cluster/kubeconfig"
      exit 0
    fi
    mkdir -p "$state"
    nohup bash "$0" start "$state/cluster" >"$state/start.log" 2>&1 &
    echo $! > "$state/pid"
    for _ in $(seq 1 3600); do
      if grep -q '^READY ' "$state/start.log" 2>/dev/null; then
        echo "export KUBECONFIG=$state/cluster/kubeconfig"
        echo "# kubectl, flux and the other tools: export PATH=$(cat "$state/cluster/testbin-path"):\$PATH" >&2
        exit 0
      fi
      kill -0 "$(cat "$state/pid")" 2>/dev/null || { cat "$state/start.log" >&2; die "the cluster failed to start"; }
      sleep 0.5
    done
    die "timed out waiting for the cluster"
    ;;
  env)
    [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null || die "no cluster is running; run: $0 up"
    echo "export KUBECONFIG=$state/cluster/kubeconfig"
    ;;
  down)
    if [[ -f "$state/pid" ]]; then
      kill "$(cat "$state/pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$(cat "$state/pid")" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -rf "$state"
    echo "dev-cluster: stopped"
    ;;
  *)
    echo "usage: $0 up|down|env" >&2
    exit 2
    ;;
esac
