#!/usr/bin/env bash
# The main job, from a fresh machine: set up, start the local dev cluster, create a demo
# namespace with a few real objects, back it up to the embedded default storage (a local
# directory), and describe the backup.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
KUBECONFIG=$(bash scripts/dev-cluster.sh up dev | tail -1)
export KUBECONFIG
cargo build -q --bin lifeboat
LB=target/debug/lifeboat

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: lifeboat-demo, labels: {team: demo}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: lifeboat-demo, labels: {app: shop}}
data: {greeting: hello, mode: production}
---
apiVersion: v1
kind: Secret
metadata: {name: db-credentials, namespace: lifeboat-demo, labels: {app: shop}}
stringData: {password: not-a-real-password}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: lifeboat-demo, labels: {app: shop}}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec: {containers: [{name: web, image: nginx:1.25}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: lifeboat-demo, labels: {app: shop}}
spec: {selector: {app: shop}, ports: [{port: 80}]}
YAML

name="demo-$(date +%Y%m%d%H%M%S)"
"$LB" backup create "$name" --include-namespaces lifeboat-demo --wait
echo
"$LB" backup describe "$name" --details
echo
"$LB" backup get
