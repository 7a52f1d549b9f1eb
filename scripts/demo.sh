#!/usr/bin/env bash
# The main job, from a fresh machine: set up, start the local dev cluster with one real
# node, create a demo namespace with a few real objects and a Deployment whose pods run,
# back it up to the embedded default storage (a local directory), describe the backup,
# then lose the namespace and restore it: the pods run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
KUBECONFIG=$(bash scripts/dev-cluster.sh up dev 16443 --nodes 1 | tail -1)
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
    spec:
      containers:
      - name: web
        image: localhost/busybox:1.35.0
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www']
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: lifeboat-demo, labels: {app: shop}}
spec: {selector: {app: shop}, ports: [{port: 80, targetPort: 8080}]}
YAML
kubectl -n lifeboat-demo rollout status deployment/shop --timeout=120s >/dev/null
echo "== before: the pods run"
kubectl -n lifeboat-demo get pods -o wide

name="demo-$(date +%Y%m%d%H%M%S)"
"$LB" backup create "$name" --include-namespaces lifeboat-demo --wait
echo
"$LB" backup describe "$name" --details
echo
"$LB" backup get
echo
echo "== the namespace is lost"
kubectl delete namespace lifeboat-demo --wait=true
echo
"$LB" restore create --from-backup "$name" --wait --wait-ready
echo
echo "== after: the pods run again"
kubectl -n lifeboat-demo get pods -o wide
