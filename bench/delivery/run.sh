#!/usr/bin/env bash
# End-to-end delivery on SQLite and on PostgreSQL: sustained items/s from concurrent
# clients (submit → sealed to 4 key slots → delivered → done) and submit-to-visible
# latency at a fixed offered load, against the targets of the issue.
# Usage: bash bench/delivery/run.sh [extra bench_delivery flags, e.g. --clients 64 --secs 20]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renkei/target}"
# As a server runs: Sequoia's certificate parser builds anyhow errors while parsing
# normally, and RUST_BACKTRACE=1 (set by scripts/test-all) makes each capture a
# backtrace, doubling the cost of every certificate parse on the send path.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

find_pg_bin() {
    for dir in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" /usr/lib/postgresql/15/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

. scripts/prereqs.sh
if find_pg_bin >/dev/null; then
    renkei_install_prereqs
else
    renkei_install_prereqs initdb:postgresql-15
fi

# The same throwaway cluster as scripts/test-all.
PG_DIR=""
PG_BIN=""
WORK=""
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
start_postgres() {
    PG_BIN="$(find_pg_bin)"
    PG_DIR="$(mktemp -d /tmp/renkei-pg.XXXXXX)"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log"; exit 1; }
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c full_page_writes=off" \
        start >/dev/null
    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    PG_VERSION="$("$PG_BIN/postgres" --version | awk '{print $3}')"
}
stop_postgres() {
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
cleanup() {
    stop_postgres
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -j 2 -p mailbox --example bench_delivery
bin="$CARGO_TARGET_DIR/release/examples/bench_delivery"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/renkei-bench-delivery.XXXXXX")"

echo "== SQLite (WAL, synchronous=FULL) in $WORK"
mkdir -p "$WORK/sqlite"
sqlite_out="$("$bin" sqlite "$WORK/sqlite" "$@" | tee /dev/stderr | grep '^RESULT')"

start_postgres
echo "== PostgreSQL $PG_VERSION (throwaway cluster as in scripts/test-all: fsync=off)"
pg_out="$("$bin" postgres "$PG_URL" "$@" | tee /dev/stderr | grep '^RESULT')"
stop_postgres

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "min") ? v >= t : v < t; print ok ? "ok" : "MISSED" }'; }
rate="$(field "$sqlite_out" rate)"
echo
printf '%-34s %12s %12s   %s\n' "delivery on $(nproc) cores" "SQLite" "PostgreSQL" "target"
printf '%-34s %12s %12s   %s\n' "sustained items/s (end to end)" "$(field "$sqlite_out" sustained)" "$(field "$pg_out" sustained)" ">= 1000   $(verdict "$(field "$sqlite_out" sustained)" 1000 min) / $(verdict "$(field "$pg_out" sustained)" 1000 min)"
printf '%-34s %12s %12s   %s\n' "  (submissions acknowledged/s)" "$(field "$sqlite_out" acked)" "$(field "$pg_out" acked)" ""
for p in p50 p99 max; do
    target=""
    [ "$p" = p99 ] && target="< 100 ms  $(verdict "$(field "$sqlite_out" p99)" 100 max) / $(verdict "$(field "$pg_out" p99)" 100 max)"
    printf '%-34s %12s %12s   %s\n' "$p submit→visible at $rate/s (ms)" "$(field "$sqlite_out" "$p")" "$(field "$pg_out" "$p")" "$target"
done
