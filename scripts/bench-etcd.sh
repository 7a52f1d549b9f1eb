#!/usr/bin/env bash
# etcd snapshot benchmark (issue 4): fill a private etcd 3.4 with ~SIZE MiB of values, then,
# in the same run and on the same data, measure wall time and peak RSS of:
#   save     etcdctl snapshot save        vs  lifeboat etcd snapshot save --to
#   check    etcdctl snapshot status      vs  lifeboat etcd snapshot verify
#            (etcdctl has no verify; status is its only whole-file read; sha256sum of the
#            file is printed as the floor for lifeboat's trailer check)
#   restore  etcdctl snapshot restore     vs  lifeboat etcd snapshot restore
# and print lifeboat/etcdctl ratios.
#
#   scripts/bench-etcd.sh [SIZE_MiB]     default 1024
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}

bash scripts/setup.sh
cargo build --release -q --bin lifeboat
LB=$PWD/target/release/lifeboat
WORK=$(mktemp -d /tmp/lifeboat-bench-etcd.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CLIENT=$(free_port) PEER=$(free_port)
URL=http://127.0.0.1:$CLIENT
etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "$URL" --advertise-client-urls "$URL" \
  --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
  --initial-cluster "bench=http://127.0.0.1:$PEER" --quota-backend-bytes=$((8 * 1024 * 1024 * 1024)) \
  --max-request-bytes=$((2 * 1024 * 1024)) >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
trap 'kill $ETCD_PID 2>/dev/null; wait $ETCD_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done

echo "loading ~$SIZE_MIB MiB into etcd..." >&2
# 512 KiB random values through etcd's gRPC gateway, 4 writers.
python3 - "$URL" "$SIZE_MIB" <<'PY'
import base64, json, os, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, size = sys.argv[1], int(sys.argv[2])
n = size * 2
def put(i):
    body = json.dumps({"key": base64.b64encode(b"/bench/%08d" % i).decode(),
                       "value": base64.b64encode(os.urandom(512 * 1024)).decode()}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/v3/kv/put", body), timeout=60).read()
with ThreadPoolExecutor(4) as ex:
    list(ex.map(put, range(n)))
PY

# Runs a command, printing "<wall seconds> <peak RSS KiB>".
measure() {
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; return 1; }
  cat "$WORK/time"
}
export ETCDCTL_API=3
read -r es_s es_kb < <(measure etcdctl --endpoints "$URL" snapshot save "$WORK/etcdctl.db")
read -r ls_s ls_kb < <(measure "$LB" etcd snapshot save --endpoints "$URL" --to "$WORK/lifeboat.db")
SNAP_MIB=$(( $(stat -c %s "$WORK/lifeboat.db") / 1024 / 1024 ))
read -r ec_s ec_kb < <(measure etcdctl snapshot status "$WORK/lifeboat.db")
read -r lc_s lc_kb < <(measure "$LB" etcd snapshot verify "$WORK/lifeboat.db")
read -r sha_s sha_kb < <(measure sha256sum "$WORK/lifeboat.db")
read -r er_s er_kb < <(measure etcdctl snapshot restore "$WORK/lifeboat.db" --data-dir "$WORK/r-etcdctl")
read -r lr_s lr_kb < <(measure "$LB" etcd snapshot restore "$WORK/lifeboat.db" --data-dir "$WORK/r-lifeboat")
DB_E=$(( $(stat -c %s "$WORK/r-etcdctl/member/snap/db") / 1024 / 1024 ))
DB_L=$(( $(stat -c %s "$WORK/r-lifeboat/member/snap/db") / 1024 / 1024 ))

out=${LIFEBOAT_BENCH_OUT:-.bench/etcd-table.txt}
mkdir -p "$(dirname "$out")"
{
  echo "snapshot: $SNAP_MIB MiB ($((SIZE_MIB * 2)) values of 512 KiB); $(nproc) cores"
  printf '%-8s %-22s %8s %8s %10s\n' step tool wall_s ratio peak_MiB
  row() { awk -v s="$1" -v t="$2" -v w="$3" -v kb="$4" -v base="$5" \
    'BEGIN { printf "%-8s %-22s %8.2f %7.2fx %10.1f\n", s, t, w, w / base, kb / 1024 }'; }
  row save "etcdctl snapshot save" "$es_s" "$es_kb" "$es_s"
  row save "lifeboat save" "$ls_s" "$ls_kb" "$es_s"
  row check "etcdctl status" "$ec_s" "$ec_kb" "$ec_s"
  row check "lifeboat verify" "$lc_s" "$lc_kb" "$ec_s"
  row check "sha256sum (floor)" "$sha_s" "$sha_kb" "$ec_s"
  row restore "etcdctl restore" "$er_s" "$er_kb" "$er_s"
  row restore "lifeboat restore" "$lr_s" "$lr_kb" "$er_s"
  echo "restored member/snap/db: etcdctl $DB_E MiB, lifeboat $DB_L MiB (compacted copy)"
} | tee "$out"
