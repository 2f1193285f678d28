#!/usr/bin/env python3
"""Helpers of hack/bench-scale.sh (one subcommand each; stdlib only).

  gen DIR REPOS UNITS          unit files DIR/rNNNN/*.yaml: per repository UNITS units (ConfigMaps and
                               every fifth a Deployment), named rNNNN-... so all land in one namespace
  objects REPOS NS APPS_NS URL CHR_INTERVAL KS_INTERVAL
                               the ConfigHubRepositories and Kustomizations (one YAML stream on stdout)
  ready KIND_JSON T0           reads `kubectl get -o json` on stdin: "<ready> <total> <last> <median>", the
                               last and median seconds from T0 (epoch) to each Ready=True transition
  metrics                      the controller's /metrics on stdin: one `name value` line per total we use
  audit LOG FROM TO            kube-apiserver requests received in [FROM, TO) (epoch seconds), per client
                               (user agent) and verb/resource, as JSON
"""
import collections, json, statistics, sys
from datetime import datetime


def gen(out, repos, units):
    import os
    for r in range(repos):
        d = f"{out}/r{r:04d}"
        os.makedirs(d, exist_ok=True)
        for u in range(units):
            name = f"r{r:04d}-u{u:02d}"
            if u % 5 == 4:
                body = (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n"
                        f"    app: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n"
                        f"  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n"
                        f"      - name: app\n        image: nginx:1.27\n        env:\n        - name: REPO\n"
                        f"          value: \"{r}\"\n        resources:\n          requests:\n            cpu: 10m\n")
            else:
                body = (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app: scale\n"
                        f"data:\n  repo: \"{r}\"\n  unit: \"{u}\"\n  mode: production\n")
            with open(f"{d}/u{u:02d}.yaml", "w") as f:
                f.write(body)


def objects(repos, ns, apps_ns, url, chr_interval, ks_interval):
    docs = []
    for r in range(repos):
        name = f"r{r:04d}"
        docs.append(f"""apiVersion: source.confighub.com/v1beta1
kind: ConfigHubRepository
metadata:
  name: {name}
  namespace: {ns}
spec:
  url: {url}
  space: {name}
  interval: {chr_interval}
  secretRef:
    name: confighub
""")
        docs.append(f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: {ns}
spec:
  interval: {ks_interval}
  prune: true
  wait: false
  path: ./
  targetNamespace: {apps_ns}
  sourceRef:
    kind: ExternalArtifact
    name: {name}
""")
    print("---\n".join(docs))


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ready(t0):
    items = json.load(sys.stdin)["items"]
    times = []
    for item in items:
        for c in item.get("status", {}).get("conditions", []):
            if c["type"] == "Ready" and c["status"] == "True":
                times.append(ts(c["lastTransitionTime"]) - t0)
    last = max(times) if times else 0
    median = statistics.median(times) if times else 0
    print(len(times), len(items), f"{last:.0f}", f"{median:.0f}")


def metrics():
    totals = collections.Counter()
    for line in sys.stdin:
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        value = float(value)
        if name == "confighub_client_requests_total":
            op = labels.split('operation="')[1].split('"')[0]
            totals[f"requests.{op}"] += value
            totals["requests"] += value
        elif name == "confighub_client_response_bytes_total":
            op = labels.split('operation="')[1].split('"')[0]
            totals[f"bytes.{op}"] += value
        elif name in ("confighub_source_unit_downloads_total", "gotk_reconcile_duration_seconds_count",
                      "confighub_drift_passes_total", "confighub_source_builds_skipped_total",
                      "confighub_source_artifacts_stored_total"):
            totals[name] += value
    for k in sorted(totals):
        print(k, int(totals[k]))


def client(ua):
    if ua.startswith("kustomize-controller"):
        return "kustomize-controller"
    if ua.startswith("confighub-source-controller"):
        return "confighub-source-controller"
    if ua.startswith("kubectl"):
        return "kubectl (this script)"
    return "kube-apiserver and other"


def audit(path, start, end):
    seen = set()
    by_client = collections.Counter()
    by_verb = collections.defaultdict(collections.Counter)
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e["auditID"] in seen:
                continue
            at = ts(e["requestReceivedTimestamp"])
            if not start <= at < end:
                continue
            seen.add(e["auditID"])
            who = client(e.get("userAgent", ""))
            by_client[who] += 1
            resource = e.get("objectRef", {}).get("resource", e.get("requestURI", "?").split("?")[0])
            sub = e.get("objectRef", {}).get("subresource")
            dry = "dryRun" in e.get("requestURI", "")
            verb = e["verb"] + (" (dry run)" if dry else "")
            by_verb[who][f"{verb} {resource}{'/' + sub if sub else ''}"] += 1
    print(json.dumps({"clients": by_client, "verbs": by_verb}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        gen(args[0], int(args[1]), int(args[2]))
    elif cmd == "objects":
        objects(int(args[0]), *args[1:])
    elif cmd == "ready":
        ready(float(args[0]))
    elif cmd == "metrics":
        metrics()
    elif cmd == "audit":
        audit(args[0], float(args[1]), float(args[2]))
    else:
        sys.exit(f"unknown command {cmd}")
