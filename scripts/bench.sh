#!/usr/bin/env bash
# Resource-backup benchmark (issues 2 and 12): on dedicated dev-cluster instances, load N
# ConfigMaps of ~3 KiB and measure, in the same run and against the same objects:
#
# One namespace (instance "bench"): N ConfigMaps in namespace bench.
#   raw      a minimal paginated LIST (limit 500) of the namespace that only follows
#            continue tokens: the physical limit of a resource backup
#   kubectl  `kubectl get configmaps -n bench -o json` (kubectl also pages by 500)
#   lifeboat `lifeboat backup create --include-namespaces bench` into a local directory
#            (default gzip level 1; lifeboat-z6: --compression-level 6, Velero's level)
#
# 100 namespaces (instance "bench-spread"): the same N ConfigMaps spread evenly over
# namespaces load-00 ... load-99.
#   raw      one minimal paginated LIST of every ConfigMap of the cluster (cluster-wide)
#   lifeboat `lifeboat backup create --include-namespaces 'load-*'` (100 of 100)
#   raw-1ns  the minimal LIST of namespace load-00 alone
#   lifeboat-1ns `lifeboat backup create --include-namespaces load-00` (1 of 100)
#
# Prints wall time (median of LIFEBOAT_BENCH_REPEAT runs, default 3; kubectl runs once),
# the ratio to the raw LIST of the same ConfigMaps, and peak RSS (the largest of the runs),
# per N. The raw LIST and lifeboat's backup of the same objects run in alternation, a round
# each, so that both medians come from the same minutes.
#
#   scripts/bench.sh [N ...]     default: 10000 100000
#   LIFEBOAT_BENCH_SCENARIOS="one spread" (default both)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=("$@")
((${#COUNTS[@]})) || COUNTS=(10000 100000)
SCENARIOS=${LIFEBOAT_BENCH_SCENARIOS:-one spread}
REPEAT=${LIFEBOAT_BENCH_REPEAT:-3}
SPREAD=100

bash scripts/setup.sh
export LIFEBOAT_DEV_HOME=${LIFEBOAT_BENCH_HOME:-$PWD/.bench/clusters}
PORT=${LIFEBOAT_BENCH_PORT:-36443}
trap 'bash scripts/dev-cluster.sh down bench >/dev/null 2>&1 || true; bash scripts/dev-cluster.sh down bench-spread >/dev/null 2>&1 || true' EXIT
cargo build --release -q --bin lifeboat --example raw_list --example bench_load -p lifeboat -p lifeboat-engine
BIN=target/release
WORK=$(mktemp -d /tmp/lifeboat-bench.XXXXXX)

# Runs a command once, printing "<wall seconds> <peak RSS KiB>".
measure() {
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; return 1; }
  cat "$WORK/time"
}

# "<median wall seconds> <largest peak RSS KiB>" of lines "<wall> <KiB>".
median() {
  printf '%s\n' "$@" | sort -n -k1,1 | awk '{ w[NR] = $1; if ($2 > m) m = $2 } END { print w[int((NR + 1) / 2)], m }'
}

# A lifeboat backup into a fresh directory, REPEAT times: "<median s> <peak KiB>".
backup() { # NAME STORAGE ARGS...
  local name=$1 storage=$2 r out=()
  shift 2
  for ((r = 0; r < REPEAT; r++)); do
    rm -rf "$storage"
    out+=("$(measure env LIFEBOAT_CONFIG="$WORK/locations.yaml" LIFEBOAT_STORAGE_DIR="$storage" \
      "$BIN/lifeboat" --kubeconfig "$KC" backup create "$name" "$@")")
  done
  median "${out[@]}"
}

# The raw LIST of SCOPE and a lifeboat backup, one after the other, REPEAT rounds: both see
# the same machine (two cores shared with the control plane, whose load drifts between
# minutes). "<raw median s> <raw peak KiB> <lifeboat median s> <lifeboat peak KiB>".
pair() { # SCOPE NAME STORAGE BACKUP_ARGS...
  local scope=$1 name=$2 storage=$3 r raw=() lb=()
  shift 3
  for ((r = 0; r < REPEAT; r++)); do
    raw+=("$(measure "$BIN/examples/raw_list" "$KC" "$scope")")
    rm -rf "$storage"
    lb+=("$(measure env LIFEBOAT_CONFIG="$WORK/locations.yaml" LIFEBOAT_STORAGE_DIR="$storage" \
      "$BIN/lifeboat" --kubeconfig "$KC" backup create "$name" "$@")")
  done
  echo "$(median "${raw[@]}") $(median "${lb[@]}")"
}

items_of() { # STORAGE NAME
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['status']['progress']['itemsBackedUp'])" "$1/backups/$2/velero-backup.json"
}

row() { # N NAMESPACES TOOL SECONDS KIB RAW_SECONDS
  awk -v n="$1" -v ns="$2" -v t="$3" -v s="$4" -v kb="$5" -v raw="$6" \
    'BEGIN { printf "%-8s %-11s %-13s %9.2f %7.2fx %12.1f\n", n, ns, t, s, s / raw, kb / 1024 }' | tee -a "$WORK/table"
}

printf '\n%-8s %-11s %-13s %9s %8s %12s\n' N namespaces tool wall_s ratio peak_rss_MiB | tee "$WORK/table"
for n in "${COUNTS[@]}"; do
  if [[ " $SCENARIOS " == *" one "* ]]; then
    KC=$(bash scripts/dev-cluster.sh up bench "$PORT" | tail -1)
    NS=bench
    "$BIN/examples/bench_load" "$KC" "$NS" "$n"
    # Warm the API server's caches once so that every tool sees the same state.
    "$BIN/examples/raw_list" "$KC" "$NS" >/dev/null
    read -r raw_s raw_kb lb_s lb_kb < <(pair "$NS" "bench-$n" "$WORK/storage" --include-namespaces "$NS")
    read -r kc_s kc_kb < <(measure env KUBECONFIG="$KC" kubectl get configmaps -n "$NS" -o json)
    read -r z6_s z6_kb < <(backup "bench-$n" "$WORK/storage6" --include-namespaces "$NS" --compression-level 6)
    size6=$(du -m "$WORK/storage6/backups/bench-$n/bench-$n.tar.gz" | cut -f1)
    items=$(items_of "$WORK/storage" "bench-$n")
    size=$(du -m "$WORK/storage/backups/bench-$n/bench-$n.tar.gz" | cut -f1)
    row "$n" 1 raw "$raw_s" "$raw_kb" "$raw_s"
    row "$n" 1 kubectl "$kc_s" "$kc_kb" "$raw_s"
    row "$n" 1 lifeboat "$lb_s" "$lb_kb" "$raw_s"
    row "$n" 1 lifeboat-z6 "$z6_s" "$z6_kb" "$raw_s"
    echo "   (lifeboat stored $items items; tarball ${size} MiB at gzip level 1, ${size6} MiB at level 6)" | tee -a "$WORK/table"
  fi
  if [[ " $SCENARIOS " == *" spread "* ]]; then
    KC=$(bash scripts/dev-cluster.sh up bench-spread "$((PORT + 10))" | tail -1)
    "$BIN/examples/bench_load" "$KC" load "$n" 3072 configmaps "$SPREAD"
    "$BIN/examples/raw_list" "$KC" '*' >/dev/null
    read -r raw_s raw_kb lb_s lb_kb < <(pair '*' "spread-$n" "$WORK/storage-spread" --include-namespaces 'load-*')
    items=$(items_of "$WORK/storage-spread" "spread-$n")
    read -r raw1_s raw1_kb lb1_s lb1_kb < <(pair load-00 "one-$n" "$WORK/storage-one" --include-namespaces load-00)
    items1=$(items_of "$WORK/storage-one" "one-$n")
    row "$n" "$SPREAD" raw "$raw_s" "$raw_kb" "$raw_s"
    row "$n" "$SPREAD" lifeboat "$lb_s" "$lb_kb" "$raw_s"
    row "$n" "1 of $SPREAD" raw-1ns "$raw1_s" "$raw1_kb" "$raw1_s"
    row "$n" "1 of $SPREAD" lifeboat-1ns "$lb1_s" "$lb1_kb" "$raw1_s"
    echo "   (lifeboat stored $items items from $SPREAD namespaces, $items1 from 1)" | tee -a "$WORK/table"
  fi
done
cp "$WORK/table" "${LIFEBOAT_BENCH_OUT:-.bench/last-table.txt}" 2>/dev/null || { mkdir -p .bench; cp "$WORK/table" .bench/last-table.txt; }
rm -rf "$WORK"
