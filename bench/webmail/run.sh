#!/usr/bin/env bash
# The webmail's Inbox page under load: a signed-in doctor whose Inbox holds
# COUNT reading-request threads (default 10,000), fetched by wrk over HTTPS
# (TLS 1.3, HTTP/1.1 keep-alive) at CONNS concurrent connections (default 64)
# for SECS seconds (default 20), against the release build on SQLite.
# Prints pages/s and the latency percentiles, with the load average of the
# machine (others may be building on it) and the targets of the issue
# (>= 1,000 pages/s, p99 < 50 ms).
#
# The data is loaded by mailbox's bench_imap_load example (threads mode: the
# sender opens COUNT threads through `Threads::open`, the delivery worker files
# them); `renkei serve` then serves it; the session cookie comes from the JSON
# API's sign-in, as a browser's would from the login page.
#
# The server may use both cores, as it would in service; wrk runs beside it
# on the same two cores (its TLS and parsing cost is in the figures).
#
# Usage: bash bench/webmail/run.sh [COUNT] [CONNS] [SECS]
#        (RENKEI_BENCH_BIN and RENKEI_BENCH_LOADER name prebuilt binaries)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renkei/target}"
# As a server runs (see bench/delivery/run.sh): no backtrace capture in anyhow errors.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
COUNT="${1:-10000}"
CONNS="${2:-64}"
SECS="${3:-20}"

if ! command -v wrk >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

# RENKEI_BENCH_BIN / RENKEI_BENCH_LOADER: copies of the release binaries (the
# shared target folder's may be another worktree's by the time they run).
if [ -z "${RENKEI_BENCH_BIN:-}" ] || [ -z "${RENKEI_BENCH_LOADER:-}" ]; then
    cargo build --release -q -j 2 -p mailbox --example bench_imap_load
    cargo build --release -q -j 2 -p renkei --bin renkei
fi
loader="${RENKEI_BENCH_LOADER:-$CARGO_TARGET_DIR/release/examples/bench_imap_load}"
renkei="${RENKEI_BENCH_BIN:-$CARGO_TARGET_DIR/release/renkei}"

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/renkei-bench-webmail.XXXXXX")"
RENKEI_PID=""
cleanup() {
    [ -n "$RENKEI_PID" ] && kill "$RENKEI_PID" 2>/dev/null && wait "$RENKEI_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== loading $COUNT reading-request threads into one doctor's Inbox (SQLite) in $WORK"
reader="$("$loader" "$WORK/data" "$COUNT" 2048 threads | sed -n 's/^READER //p')"
user="${reader%% *}"
password="${reader#* }"

"$renkei" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 --second-factor optional \
    >"$WORK/renkei.out" 2>"$WORK/renkei.err" &
RENKEI_PID=$!
for _ in $(seq 1 400); do
    grep -q '^renkei listening on ' "$WORK/renkei.out" 2>/dev/null && break
    sleep 0.05
done
addr="$(sed -n 's|^renkei listening on https://||p' "$WORK/renkei.out" | head -1)"
[ -n "$addr" ] || { cat "$WORK/renkei.out" "$WORK/renkei.err"; exit 1; }
base="https://$addr"

# Sign in as a browser would get its cookie; the page itself is what is measured.
jar="$WORK/cookies"
curl -sk -c "$jar" -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -d "{\"id\":\"$user\",\"password\":\"$password\"}" "$base/api/v1/session" | grep -q 200 \
    || { echo "sign-in failed" >&2; cat "$WORK/renkei.err" >&2; exit 1; }
token="$(awk '$6 == "__Host-renkei-session" { print $7 }' "$jar")"
cookie="__Host-renkei-session=$token"

page="$(curl -sk -H "Cookie: $cookie" "$base/mail/inbox")"
rows="$(grep -c '<tr class="unread' <<<"$page" || true)"
unread="$(sed -n 's|.*id="unread-count"[^>]*>\([0-9+]*\)<.*|\1|p' <<<"$page" | head -1)"
echo "== the page: $rows rows, unread count $unread, $(wc -c <<<"$page") bytes"
expected="$COUNT"; [ "$COUNT" -ge 1000 ] && expected="999+"
[ "$rows" -ge 1 ] && [ "$unread" = "$expected" ] || { echo "unexpected inbox page (unread $unread)" >&2; exit 1; }

echo "== warm-up (3 s), then $SECS s at $CONNS connections"
wrk -t1 -c"$CONNS" -d3s -H "Cookie: $cookie" "$base/mail/inbox" >/dev/null
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# RENKEI_BENCH_PERF=FILE: also record the server's profile (perf) during the run.
if [ -n "${RENKEI_BENCH_PERF:-}" ]; then
    perf record -F 499 -g -p "$RENKEI_PID" -o "$RENKEI_BENCH_PERF" -- sleep "$SECS" >/dev/null 2>&1 &
    perf_pid=$!
fi
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$RENKEI_PID/stat"; }
ticks_before="$(cpu_ticks)"
out="$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Cookie: $cookie" "$base/mail/inbox")"
[ -z "${perf_pid:-}" ] || wait "$perf_pid"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
ticks_after="$(cpu_ticks)"
echo "$out"

rate="$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$out")"
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.1f", v }'; }
pct() { awk -v p="$1" '$1 == p { print $2 }' <<<"$out" | to_ms; }
p50="$(pct 50%)"; p99="$(pct 99%)"
errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)"
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "min") ? v >= t : v < t; print ok ? "ok" : "MISSED" }'; }
echo
printf '%-40s %10s   %s\n' "inbox page, $COUNT items, $CONNS conns" "SQLite" "target"
printf '%-40s %10s   %s\n' "pages/s" "$rate" ">= 1000  $(verdict "$rate" 1000 min)"
printf '%-40s %10s\n' "p50 (ms)" "$p50"
printf '%-40s %10s   %s\n' "p99 (ms)" "$p99" "< 50     $(verdict "$p99" 50 max)"
requests="$(awk '/requests in/ { print $1 }' <<<"$out")"
# The server's own CPU time per page: less sensitive than pages/s to whatever
# else runs on the machine (wrk and other builds share the two cores).
cpu_ms="$(awk -v t="$((ticks_after - ticks_before))" -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.2f", t * 1000 / hz / n }')"
printf '%-40s %10s\n' "server CPU per page (ms)" "$cpu_ms"
printf '%-40s %10s\n' "load average before / after" "$load_before / $load_after"
[ -z "$errors" ] || { echo "wrk reported errors: $errors"; exit 1; }
