#!/usr/bin/env bash
# Volume data benchmark (issue 15, item 7): lifeboat vs Debian's restic on the same data,
# in one run, into local repositories on the same disk:
#   first    the first backup of a generated mixed data set
#   second   a second backup after ~5% of the files changed (overwrites, appends, 200 added,
#            100 removed)
#   restore  a full restore of the second snapshot into an empty directory
# Each step prints wall seconds, CPU seconds (user+sys), peak RSS and, after the backups,
# the repository's size; then lifeboat/restic ratios (below 1 = lifeboat better).
#
# The data set (fixed seed, the shape of ../shared/volume-baselines.md): about half large
# random (incompressible) files, 40% text-like files of 64 KiB-8 MiB, 20,000 small files of
# 1-16 KiB, and some files that repeat others' content.
#
#   scripts/bench-volume.sh [SIZE_MiB]     default 1024
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}

command -v restic >/dev/null || bash scripts/setup.sh
cargo build --release -q --bin lifeboat
LB=$PWD/target/release/lifeboat
WORK=$(mktemp -d /tmp/lifeboat-bench-volume.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DATA=$WORK/data

echo "generating ~$SIZE_MIB MiB in $DATA (seed 15)..." >&2
cat >"$WORK/gen.py" <<'PY'
import os, random, sys
root, size_mib, step = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(15 if step == "generate" else 16)
MiB = 1 << 20
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
text = b" ".join(rng.choice(words) for _ in range(400_000))  # ~2.6 MB of word salad

def textlike(n):
    out, left = [], n
    while left > 0:
        off = rng.randrange(0, len(text) - 4096)
        piece = text[off:off + min(left, rng.randint(4096, 256 * 1024))]
        out.append(piece)
        left -= len(piece)
    return b"".join(out)[:n]

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

if step == "generate":
    total = size_mib * MiB
    big_total, text_total = total // 2, total * 4 // 10
    i = 0
    while big_total > 0:                      # large random files, 32-160 MiB
        n = min(big_total, rng.randint(32, 160) * MiB)
        write(f"{root}/big/blob-{i:03}.bin", rng.randbytes(n))
        big_total -= n; i += 1
    i = 0
    while text_total > 0:                     # text-like files, 64 KiB-8 MiB
        n = min(text_total, rng.randint(64 * 1024, 8 * MiB))
        write(f"{root}/text/d{i % 40:02}/doc-{i:05}.txt", textlike(n))
        text_total -= n; i += 1
    small = 20_000 * size_mib // 1024         # small files, 1-16 KiB
    for i in range(small):
        write(f"{root}/small/d{i % 200:03}/f-{i:05}.dat", textlike(rng.randint(1024, 16 * 1024)))
    docs = sorted(os.listdir(f"{root}/text/d00"))[:10]   # duplicate content
    for j, d in enumerate(docs):
        with open(f"{root}/text/d00/{d}", "rb") as f:
            write(f"{root}/copies/copy-{j:02}.txt", f.read())
else:                                         # change ~5% of the files
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    chosen = rng.sample(files, max(1, len(files) * 5 // 100))
    for k, p in enumerate(chosen):
        if k % 3 == 0:                        # append
            with open(p, "ab") as f:
                f.write(textlike(rng.randint(100, 64 * 1024)))
        else:                                 # overwrite a stretch in place
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                f.seek(rng.randrange(0, max(1, size)))
                f.write(rng.randbytes(rng.randint(100, 16 * 1024)))
    for i in range(200):
        write(f"{root}/added/n-{i:03}.dat", textlike(rng.randint(1024, 64 * 1024)))
    for p in rng.sample([f for f in files if f not in chosen], 100):
        os.remove(p)
PY
python3 "$WORK/gen.py" "$DATA" "$SIZE_MIB" generate

# Runs a command, printing "<wall s> <cpu s> <peak RSS MiB>".
measure() {
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || {
    cat "$WORK/stderr" >&2
    return 1
  }
  awk '{printf "%s %.2f %.0f\n", $1, $2 + $3, $4 / 1024}' "$WORK/time"
}
size_mb() { du -sb "$1" | awk '{printf "%.1f", $1 / 1000000}'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

export RESTIC_PASSWORD=bench LIFEBOAT_REPO_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/restic-cache
restic -r "$WORK/restic" init -q >/dev/null
FILES=$(find "$DATA" -type f | wc -l)
DATA_MB=$(size_mb "$DATA")

drop_caches
read -r r1_w r1_c r1_m < <(measure restic -r "$WORK/restic" backup -q --host bench "$DATA")
drop_caches
read -r l1_w l1_c l1_m < <(measure "$LB" volume backup --path "$DATA" --repo "$WORK/lifeboat" --host bench)
python3 "$WORK/gen.py" "$DATA" "$SIZE_MIB" change
drop_caches
read -r r2_w r2_c r2_m < <(measure restic -r "$WORK/restic" backup -q --host bench "$DATA")
drop_caches
read -r l2_w l2_c l2_m < <(measure "$LB" volume backup --path "$DATA" --repo "$WORK/lifeboat" --host bench)
R_REPO=$(size_mb "$WORK/restic")
L_REPO=$(size_mb "$WORK/lifeboat")
drop_caches
read -r r3_w r3_c r3_m < <(measure restic -r "$WORK/restic" restore latest --target "$WORK/r-restic")
drop_caches
read -r l3_w l3_c l3_m < <(measure "$LB" volume restore latest --target "$WORK/r-lifeboat" --repo "$WORK/lifeboat")
# Both restores hold exactly the data set.
diff -rq "$DATA" "$WORK/r-restic$DATA" >/dev/null || { echo "restic's restore differs" >&2; exit 1; }
diff -rq "$DATA" "$WORK/r-lifeboat" >/dev/null || { echo "lifeboat's restore differs" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo
echo "data set: $DATA_MB MB in $FILES files; restic $(restic version | awk '{print $2}'), lifeboat $($LB --version | awk '{print $2}')"
printf '%-9s | %-26s | %-26s | %s\n' step "restic wall / CPU / RSS" "lifeboat wall / CPU / RSS" "lifeboat/restic wall, CPU, RSS"
for s in 1 2 3; do
  name=$(case $s in 1) echo first ;; 2) echo second ;; 3) echo restore ;; esac)
  eval "rw=\$r${s}_w rc=\$r${s}_c rm=\$r${s}_m lw=\$l${s}_w lc=\$l${s}_c lm=\$l${s}_m"
  printf '%-9s | %6ss / %6ss / %4s MiB | %6ss / %6ss / %4s MiB | %s, %s, %s\n' "$name" \
    "$rw" "$rc" "$rm" "$lw" "$lc" "$lm" "$(ratio "$lw" "$rw")" "$(ratio "$lc" "$rc")" "$(ratio "$lm" "$rm")"
done
echo "repository after both backups: restic $R_REPO MB, lifeboat $L_REPO MB ($(ratio "$L_REPO" "$R_REPO"))"
echo "targets (issue 15): first <= 0.5x, second <= 0.2x, restore <= 0.5x wall; repository and RSS <= 1x"
