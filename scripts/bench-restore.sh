#!/usr/bin/env bash
# Restore benchmark (issue 3): on a dedicated dev-cluster instance, back up N objects
# (ConfigMaps and Secrets of ~1 KiB across 10 namespaces), then create them again, in the
# same run, into fresh namespaces (namespace mappings, so nothing waits for deletions):
#   sequential  lifeboat restore --parallelism 1 (Velero restores one object at a time)
#   lifeboat    lifeboat restore with its default parallelism (32)
#   raw         a minimal client POSTing the same objects at the same concurrency: the limit
# Prints wall time, ratios and peak RSS.
#
#   scripts/bench-restore.sh [N]     default: 10000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
PAR=32
bash scripts/setup.sh
export LIFEBOAT_DEV_HOME=${LIFEBOAT_BENCH_HOME:-$PWD/.bench/clusters}
KC=$(bash scripts/dev-cluster.sh up bench-restore "${LIFEBOAT_BENCH_PORT:-36453}" | tail -1)
trap 'bash scripts/dev-cluster.sh down bench-restore >/dev/null 2>&1 || true' EXIT
cargo build --release -q --bin lifeboat --example raw_create --example bench_load -p lifeboat -p lifeboat-engine
BIN=target/release
WORK=$(mktemp -d /tmp/lifeboat-rbench.XXXXXX)
export LIFEBOAT_CONFIG="$WORK/locations.yaml" LIFEBOAT_STORAGE_DIR="$WORK/storage"
per=$((N / 20))
for i in $(seq 0 9); do
  "$BIN/examples/bench_load" "$KC" "rb-$i" "$per" 1024 configmaps 2>/dev/null
  "$BIN/examples/bench_load" "$KC" "rb-$i" "$per" 1024 secrets 2>/dev/null
done
"$BIN/lifeboat" --kubeconfig "$KC" backup create rbench --include-namespaces 'rb-*' \
  --include-resources configmaps,secrets,namespaces >/dev/null
mkdir -p "$WORK/x" && tar xzf "$WORK/storage/backups/rbench/rbench.tar.gz" -C "$WORK/x"

maps() { local s=$1; local m=(); for i in $(seq 0 9); do m+=("rb-$i:rb-$i-$s"); done; (IFS=,; echo "${m[*]}"); }
measure() {
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; return 1; }
  cat "$WORK/time"
}
read -r seq_s seq_kb < <(measure "$BIN/lifeboat" --kubeconfig "$KC" restore create r-seq --from-backup rbench \
  --parallelism 1 --namespace-mappings "$(maps seq)")
read -r lb_s lb_kb < <(measure "$BIN/lifeboat" --kubeconfig "$KC" restore create r-par --from-backup rbench \
  --parallelism "$PAR" --namespace-mappings "$(maps par)")
read -r raw_s raw_kb < <(measure "$BIN/examples/raw_create" "$KC" "$WORK/x" raw "$PAR")
restored=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['status']['progress']['itemsRestored'])" "$WORK/storage/restores/r-par/velero-restore.json")

printf '\nobjects=%s (restored by lifeboat: %s), concurrency=%s\n' "$N" "$restored" "$PAR" | tee "$WORK/table"
printf '%-12s %9s %14s %14s %12s\n' tool wall_s vs_sequential vs_raw peak_rss_MiB | tee -a "$WORK/table"
for row in "sequential $seq_s $seq_kb" "lifeboat $lb_s $lb_kb" "raw $raw_s $raw_kb"; do
  set -- $row
  awk -v t="$1" -v s="$2" -v kb="$3" -v seq="$seq_s" -v raw="$raw_s" \
    'BEGIN { printf "%-12s %9.2f %13.2fx %13.2fx %12.1f\n", t, s, seq / s, s / raw, kb / 1024 }' | tee -a "$WORK/table"
done
mkdir -p .bench && cp "$WORK/table" "${LIFEBOAT_BENCH_OUT:-.bench/last-restore-table.txt}"
rm -rf "$WORK"
