#!/usr/bin/env bash
# Every test: formatting, lints, unit tests, and the integration tests against a real
# control plane (its own dev-cluster instance) and a real S3 HTTP server (moto).
# Services this script starts are stopped by PID when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# Licences, duplicate versions and sources (deny.toml); advisories when the RustSec
# database can be fetched (or a copy is already here) — it lives in a git repository this
# machine may not reach, and then the script says so instead of passing it silently.
cargo deny --log-level error check licenses bans sources
if cargo deny --log-level error fetch db >/dev/null 2>&1; then
  cargo deny --log-level error check advisories
elif compgen -G "$HOME/.cargo/advisory-dbs/*/" >/dev/null; then
  cargo deny --log-level error check --disable-fetch advisories
else
  echo "[test] advisories NOT checked: the RustSec advisory database cannot be fetched from here" >&2
fi

WORK=$(mktemp -d /tmp/lifeboat-test.XXXXXX)
MOTO_PID=""
S3S_PID=""
cleanup() {
  [[ -n $MOTO_PID ]] && kill "$MOTO_PID" 2>/dev/null || true
  [[ -n $S3S_PID ]] && kill "$S3S_PID" 2>/dev/null || true
  LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh down it >/dev/null 2>&1 || true
  LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh down it-standby >/dev/null 2>&1 || true
  LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh down it-node >/dev/null 2>&1 || true
  LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh down it-node2 >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A dedicated control plane for the tests (three consecutive ports).
API_PORT=${LIFEBOAT_IT_API_PORT:-26443}
export LIFEBOAT_IT_KUBECONFIG
LIFEBOAT_IT_KUBECONFIG=$(LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh up it "$API_PORT" | tail -1)
export LIFEBOAT_IT_KUBECONFIG_NOBODY="${LIFEBOAT_IT_KUBECONFIG%/*}/kubeconfig-nobody"
export LIFEBOAT_IT_ETCD="http://127.0.0.1:$((API_PORT + 1))"
# A second control plane: a standby cluster sharing the primary's bucket.
export LIFEBOAT_IT_KUBECONFIG_STANDBY
LIFEBOAT_IT_KUBECONFIG_STANDBY=$(LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh up it-standby "${LIFEBOAT_IT_STANDBY_PORT:-$((API_PORT + 100))}" | tail -1)
# A third control plane with one real node (kubelet + containerd + kube-proxy): pods run
# there, for the tests that need them (tests/it/node.rs).
export LIFEBOAT_IT_NODE_KUBECONFIG LIFEBOAT_IT_NODE_HOST LIFEBOAT_IT_NODE_CONTAINERD
LIFEBOAT_IT_NODE_KUBECONFIG=$(LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh up it-node "${LIFEBOAT_IT_NODE_PORT:-$((API_PORT + 200))}" --nodes 1 | tail -1)
LIFEBOAT_IT_NODE_HOST=$(LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh hostip it-node)
LIFEBOAT_IT_NODE_CONTAINERD=$(LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh sockets it-node)
# etcd of that cluster as its node sees it (the etcd snapshot CronJob runs there).
export LIFEBOAT_IT_NODE_ETCD="http://$LIFEBOAT_IT_NODE_HOST:$((${LIFEBOAT_IT_NODE_PORT:-$((API_PORT + 200))} + 1))"
# A fourth control plane with a real node of its own: the other side of the DR tests
# that need two clusters with nodes (tests/it/dr.rs).
export LIFEBOAT_IT_NODE2_KUBECONFIG
LIFEBOAT_IT_NODE2_KUBECONFIG=$(LIFEBOAT_DEV_HOME="$WORK/clusters" bash scripts/dev-cluster.sh up it-node2 "${LIFEBOAT_IT_NODE2_PORT:-$((API_PORT + 400))}" --nodes 1 | tail -1)
# kube-apiserver of the cache, for the test that starts one on a restored etcd.
export LIFEBOAT_IT_CP_BIN
LIFEBOAT_IT_CP_BIN=$(bash scripts/dev-cluster.sh bindir)

MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$MOTO_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
export LIFEBOAT_IT_S3="http://127.0.0.1:$MOTO_PORT"

# The strict S3 server: buckets are directories under its root.
S3S_PORT=$(free_port)
mkdir -p "$WORK/s3s/lifeboat-strict"
s3s-fs --host 127.0.0.1 --port "$S3S_PORT" --access-key lifeboat-it --secret-key lifeboat-it-secret \
  "$WORK/s3s" >"$WORK/s3s.log" 2>&1 &
S3S_PID=$!
for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$S3S_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
export LIFEBOAT_IT_S3_STRICT="http://127.0.0.1:$S3S_PORT" LIFEBOAT_IT_S3_STRICT_ROOT="$WORK/s3s"
export LIFEBOAT_SHARED_DIR=${LIFEBOAT_SHARED_DIR:-$(cd .. && pwd)/shared}

cargo test --workspace -- --include-ignored

# Hostile input never crashes the parsers: each fuzz target briefly (FUZZ_SECONDS each).
bash scripts/fuzz.sh
