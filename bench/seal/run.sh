#!/usr/bin/env bash
# Seal/open throughput against cp and GnuPG, side by side in one run.
# Usage: bash bench/seal/run.sh [MiB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renkei/target}"
command -v gpg >/dev/null || { apt-get update -qq && apt-get install -y -qq gnupg; }
cargo build --release -q -p mailbox --example bench_seal
work="$(mktemp -d "${TMPDIR:-/var/tmp}/renkei-bench-seal.XXXXXX")"
trap 'rm -rf "$work"' EXIT
bin="$CARGO_TARGET_DIR/release/examples/bench_seal"
# Small envelopes on one core (the targets are per core); the large attachment may
# use both cores (one reads and hashes while the other encrypts), like cp and gpg.
taskset -c 0 "$bin" "$work" 0 small
"$bin" "$work" "${1:-1024}" large
