#!/usr/bin/env bash
# Installs everything lifeboat's demo and tests need on a fresh Debian machine with a Rust
# toolchain: the dev cluster's control plane (built once from Debian's source and cached),
# moto (a real S3 HTTP server) and s3s-fs (a strict one). Idempotent: a warm machine passes
# through in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    if [[ ! -f /var/lib/apt/lists/.lifeboat-updated ]]; then
      apt-get update -qq && touch /var/lib/apt/lists/.lifeboat-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

apt_install curl openssl python3 jq
# Plain restic (Debian 12: 0.14.0): the volume tests prove it reads lifeboat's repositories
# and lifeboat reads its own; the volume benchmark compares against it.
apt_install restic
# promtool (Debian's prometheus package) checks the server's /metrics and the generated
# alert rules in the tests; prometheus itself loads the rules and fires them.
apt_install prometheus
# A real headless browser for the DR console's test (Debian's Chromium).
apt_install chromium
if ! python3 -c 'import moto.server' >/dev/null 2>&1 || ! command -v moto_server >/dev/null 2>&1; then
  log "pip install moto[server]"
  python3 -m pip install -q 'moto[server]'
fi
# A strict S3 server (checks SigV4 signatures and checksums, unlike moto) for the tests of
# wrong credentials and upload integrity. Built once, kept in ~/.cargo/bin.
if ! command -v s3s-fs >/dev/null 2>&1; then
  log "cargo install s3s-fs (about two minutes, once)"
  cargo install -q s3s-fs --version 0.14.1 --locked --features binary
fi
# cargo-deny checks licences, advisories, duplicate versions and sources (deny.toml).
if ! command -v cargo-deny >/dev/null 2>&1; then
  log "cargo install cargo-deny (a few minutes, once)"
  cargo install -q cargo-deny --version 0.20.2 --locked
fi
# cargo fuzz runs the fuzz targets (scripts/fuzz.sh).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "cargo install cargo-fuzz (a minute or two, once)"
  cargo install -q cargo-fuzz --version 0.13.2 --locked
fi
bash scripts/dev-cluster.sh build
log "ready"
