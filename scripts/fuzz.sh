#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets: backup tarballs, etcd snapshots,
# resource-modifier rules) for a short while; a crash fails the script and leaves the input
# under fuzz/artifacts/<target>/. FUZZ_SECONDS per target (default 20).
# cargo fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the one stable toolchain of
# this machine accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1
cargo fuzz build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in tarball snapshot modifiers; do
  echo "[fuzz] $t for ${SECONDS_EACH}s"
  if ! cargo fuzz run "$t" -- -max_total_time="$SECONDS_EACH" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "[fuzz] $t found an input that crashes it: see fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^Done' "$log" || true
done
