#!/usr/bin/env python3
"""Generates N deterministic unit files (Deployments, Services, ConfigMaps; ~800 bytes each) for the benchmarks.

Usage: gen-units.py <out-dir> <count>
"""
import random, sys, os
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = random.Random(42)  # deterministic
teams = ["payments", "search", "checkout", "identity", "catalog", "ledger", "notify", "edge"]
images = ["nginx:1.27.3", "ghcr.io/acme/api:v2.14.1", "redis:7.4.1", "ghcr.io/acme/worker:v0.9.12",
          "registry.k8s.io/pause:3.10", "ghcr.io/acme/frontend:2025.11.3"]

def deployment(name, ns, team):
    replicas = rng.choice([1, 2, 3, 5])
    cpu = rng.choice(["100m", "250m", "500m"])
    mem = rng.choice(["128Mi", "256Mi", "512Mi"])
    port = rng.choice([8080, 8443, 9090, 3000])
    env = "".join(
        f"        - name: {k}\n          value: \"{rng.randrange(10**6)}\"\n"
        for k in rng.sample(["LOG_LEVEL", "CACHE_TTL", "POOL_SIZE", "REGION", "SHARD", "TIMEOUT_MS"], 3))
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: {team}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      containers:
      - name: app
        image: {rng.choice(images)}
        ports:
        - containerPort: {port}
          name: http
        env:
{env}        resources:
          requests:
            cpu: {cpu}
            memory: {mem}
"""

def service(name, ns):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
  - name: http
    port: 80
    targetPort: http
"""

def configmap(name, ns):
    data = "".join(f"  {k}: \"{rng.randrange(10**9)}\"\n" for k in
                   rng.sample(["feature.a", "feature.b", "limits.rps", "limits.burst", "owner", "tier"], 4))
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  namespace: {ns}
data:
{data}"""

for i in range(n):
    team = rng.choice(teams)
    ns = f"{team}-{i % 40:02d}"
    name = f"{team}-svc-{i:05d}"
    kind = i % 4
    if kind == 0:
        docs = [deployment(name, ns, team), service(name, ns)]
    elif kind == 1:
        docs = [deployment(name, ns, team), service(name, ns), configmap(name, ns)]
    elif kind == 2:
        docs = [configmap(name, ns)]
    else:
        docs = [deployment(name, ns, team)]
    with open(os.path.join(out, f"{name}.yaml"), "w") as f:
        f.write("---\n".join(docs))
