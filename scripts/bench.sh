#!/usr/bin/env bash
# Resource-backup benchmark (issue 2): on a dedicated dev-cluster instance, load N ConfigMaps
# of ~3 KiB and measure, in the same run and against the same objects:
#   raw    a minimal paginated LIST (limit 500) that only follows continue tokens: the
#          physical limit of a resource backup
#   kubectl `kubectl get configmaps -n NS -o json` (kubectl also pages by 500)
#   lifeboat `lifeboat backup create --include-namespaces NS` into a local directory
#            (default gzip level 1; lifeboat-z6: --compression-level 6, Velero's level)
# Prints wall time, the ratio to the raw LIST and peak RSS for each, per N.
#
#   scripts/bench.sh [N ...]     default: 10000 100000
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=("$@")
((${#COUNTS[@]})) || COUNTS=(10000 100000)

bash scripts/setup.sh
export LIFEBOAT_DEV_HOME=${LIFEBOAT_BENCH_HOME:-$PWD/.bench/clusters}
PORT=${LIFEBOAT_BENCH_PORT:-36443}
KC=$(bash scripts/dev-cluster.sh up bench "$PORT" | tail -1)
trap 'bash scripts/dev-cluster.sh down bench >/dev/null 2>&1 || true' EXIT
cargo build --release -q --bin lifeboat --example raw_list --example bench_load -p lifeboat -p lifeboat-engine
BIN=target/release
WORK=$(mktemp -d /tmp/lifeboat-bench.XXXXXX)
NS=bench

# Runs a command, printing "<wall seconds> <peak RSS KiB>".
measure() {
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; return 1; }
  cat "$WORK/time"
}

printf '\n%-8s %-9s %9s %8s %12s\n' N tool wall_s ratio peak_rss_MiB | tee "$WORK/table"
for n in "${COUNTS[@]}"; do
  "$BIN/examples/bench_load" "$KC" "$NS" "$n"
  # Warm the API server's caches once so that every tool sees the same state.
  "$BIN/examples/raw_list" "$KC" "$NS" >/dev/null
  read -r raw_s raw_kb < <(measure "$BIN/examples/raw_list" "$KC" "$NS")
  read -r kc_s kc_kb < <(measure env KUBECONFIG="$KC" kubectl get configmaps -n "$NS" -o json)
  rm -rf "$WORK/storage"
  rm -rf "$WORK/storage6"
  read -r z6_s z6_kb < <(measure env LIFEBOAT_CONFIG="$WORK/locations.yaml" LIFEBOAT_STORAGE_DIR="$WORK/storage6" \
    "$BIN/lifeboat" --kubeconfig "$KC" backup create "bench-$n" --include-namespaces "$NS" --compression-level 6)
  size6=$(du -m "$WORK/storage6/backups/bench-$n/bench-$n.tar.gz" | cut -f1)
  read -r lb_s lb_kb < <(measure env LIFEBOAT_CONFIG="$WORK/locations.yaml" LIFEBOAT_STORAGE_DIR="$WORK/storage" \
    "$BIN/lifeboat" --kubeconfig "$KC" backup create "bench-$n" --include-namespaces "$NS")
  items=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['status']['progress']['itemsBackedUp'])" "$WORK/storage/backups/bench-$n/velero-backup.json")
  size=$(du -m "$WORK/storage/backups/bench-$n/bench-$n.tar.gz" | cut -f1)
  for row in "raw $raw_s $raw_kb" "kubectl $kc_s $kc_kb" "lifeboat $lb_s $lb_kb" "lifeboat-z6 $z6_s $z6_kb"; do
    set -- $row
    awk -v n="$n" -v t="$1" -v s="$2" -v kb="$3" -v raw="$raw_s" \
      'BEGIN { printf "%-8s %-9s %9.2f %7.2fx %12.1f\n", n, t, s, s / raw, kb / 1024 }' | tee -a "$WORK/table"
  done
  echo "   (lifeboat stored $items items; tarball ${size} MiB at gzip level 1, ${size6} MiB at level 6)" | tee -a "$WORK/table"
done
cp "$WORK/table" "${LIFEBOAT_BENCH_OUT:-.bench/last-table.txt}" 2>/dev/null || { mkdir -p .bench; cp "$WORK/table" .bench/last-table.txt; }
rm -rf "$WORK"
