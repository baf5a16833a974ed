#!/usr/bin/env bash
# IMAP reading speed against Dovecot, side by side in one run.
#
# Renkei (SQLite, `renkei serve --imap-listen`) and a throwaway Dovecot 2.3
# (Debian's dovecot-imapd, Maildir, one passwd-file user) serve the same 10,000
# messages in one INBOX; the same client (bench/imap/imap_bench.py, a raw TLS
# socket that only counts responses) times the same commands against both,
# alternating, and prints medians and ratios against the target (<= 2x Dovecot,
# which decrypts nothing).
#
# Both servers speak implicit TLS (IMAPS) with a self-signed certificate, TLS 1.3
# only, so the transport costs the same on both sides; Dovecot reads plaintext
# Maildir files, Renkei opens each sealed item (key slot, signature, body,
# attachment) and renders it.
#
# Pinned as the notes ask: servers on core 0, client on core 1.
#
# Three parts: the first look at the folder (cold: both servers restarted before
# each round, each operation on a fresh session, target <= 2x), the same
# session again (warm, target <= 1x), and Renkei's peak resident memory while a
# client fetches a 1 GiB study (BIG_BYTES; 0 skips it; target < 200 MiB).
#
# Usage: bash bench/imap/run.sh [COUNT] [RUNS] [ATTACH_BYTES] [BIG_BYTES]
#        (defaults 10000 5 8192 1073741824)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renkei/target}"
# As a server runs (see bench/delivery/run.sh): no backtrace capture in anyhow errors.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
COUNT="${1:-10000}"
RUNS="${2:-5}"
ATTACH="${3:-8192}"
BIG="${4:-1073741824}"

if ! [ -x /usr/sbin/dovecot ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
fi
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

cargo build --release -q -j 2 -p mailbox --example bench_imap_load
cargo build --release -q -j 2 -p renkei --bin renkei
loader="$CARGO_TARGET_DIR/release/examples/bench_imap_load"
renkei="$CARGO_TARGET_DIR/release/renkei"
client="$(pwd)/bench/imap/imap_bench.py"

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/renkei-bench-imap.XXXXXX")"
chmod 755 "$WORK"
RENKEI_PID=""
DOVECOT_CONF=""
cleanup() {
    [ -n "$RENKEI_PID" ] && kill "$RENKEI_PID" 2>/dev/null && wait "$RENKEI_PID" 2>/dev/null
    [ -n "$DOVECOT_CONF" ] && /usr/sbin/dovecot -c "$DOVECOT_CONF" stop 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

echo "== loading $COUNT items (${ATTACH} B PDF attachment each) into Renkei (SQLite) in $WORK/renkei"
reader="$("$loader" "$WORK/renkei" "$COUNT" "$ATTACH" | sed -n 's/^READER //p')"
user="${reader%% *}"
password="${reader#* }"

# Sign-ins by password: the loaded accounts enrol no second factor.
start_renkei() {
    taskset -c 0 "$renkei" serve --data-dir "$1" --listen 127.0.0.1:0 --imap-listen 127.0.0.1:0 \
        --second-factor optional >"$WORK/renkei.out" 2>"$WORK/renkei.err" &
    RENKEI_PID=$!
    for _ in $(seq 1 200); do
        grep -q '^renkei imap listening on ' "$WORK/renkei.out" 2>/dev/null && break
        sleep 0.05
    done
    renkei_port="$(sed -n 's/^renkei imap listening on .*:\([0-9]*\)$/\1/p' "$WORK/renkei.out")"
    [ -n "$renkei_port" ] || { cat "$WORK/renkei.out" "$WORK/renkei.err"; exit 1; }
}
stop_renkei() {
    kill "$RENKEI_PID" 2>/dev/null && wait "$RENKEI_PID" 2>/dev/null || true
    RENKEI_PID=""
}
start_renkei "$WORK/renkei"

echo "== exporting the same messages, as Renkei renders them (BODY.PEEK[]), into Dovecot's Maildir"
home="$WORK/dovecot/home/$user"
mkdir -p "$home"
taskset -c 1 python3 "$client" export "$renkei_port" "$user" "$password" "$home/Maildir"

echo "== starting a throwaway Dovecot $(/usr/sbin/dovecot --version | cut -d' ' -f1) (Maildir, passwd-file, IMAPS with a self-signed certificate)"
D="$WORK/dovecot"
mkdir -p "$D/run" "$D/state"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null
printf '%s:{PLAIN}%s::::::\n' "$user" "$password" >"$D/passwd"
chown -R nobody:nogroup "$D/home"
dovecot_port="$(free_port)"
cat >"$D/dovecot.conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
ssl = required
ssl_min_protocol = TLSv1.3
ssl_cert = <$D/cert.pem
ssl_key = <$D/key.pem
auth_mechanisms = plain
# Renkei account IDs are upper case; Dovecot lower-cases user names by default.
auth_username_format = %u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$D/home/%u
}
mail_location = maildir:~/Maildir
mail_fsync = optimized
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $dovecot_port
    ssl = yes
  }
}
EOF
DOVECOT_CONF="$D/dovecot.conf"
start_dovecot() {
    taskset -c 0 /usr/sbin/dovecot -c "$DOVECOT_CONF"
    wait_port "$dovecot_port"
}
stop_dovecot() {
    /usr/sbin/dovecot -c "$DOVECOT_CONF" stop 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -e "$D/run/master.pid" ] || break
        sleep 0.05
    done
}
start_dovecot

echo "== warm: timing (servers on core 0, client on core 1)"
taskset -c 1 python3 "$client" bench "$user" "$password" "$RUNS" "renkei:$renkei_port" "dovecot:$dovecot_port"

echo
echo "== cold: $RUNS rounds, both servers restarted before each, a fresh session per operation"
stop_renkei
stop_dovecot
: >"$WORK/cold.jsonl"
for round in $(seq 1 "$RUNS"); do
    start_renkei "$WORK/renkei"
    start_dovecot
    if [ $((round % 2)) -eq 1 ]; then
        order=("renkei:$renkei_port" "dovecot:$dovecot_port")
    else
        order=("dovecot:$dovecot_port" "renkei:$renkei_port")
    fi
    taskset -c 1 python3 "$client" cold "$user" "$password" "${order[@]}" >>"$WORK/cold.jsonl"
    stop_renkei
    stop_dovecot
done
python3 "$client" coldreport "$WORK/cold.jsonl"

if [ "$BIG" -gt 0 ]; then
    echo
    echo "== peak memory: one item with a $((BIG >> 20)) MiB attachment, fetched whole over IMAP"
    big_reader="$("$loader" "$WORK/big" 1 "$BIG" | sed -n 's/^READER //p')"
    start_renkei "$WORK/big"
    taskset -c 1 python3 "$client" bigmem "$renkei_port" "${big_reader%% *}" "${big_reader#* }" "$RENKEI_PID"
    stop_renkei
fi
echo
echo "load: $(cat /proc/loadavg)"
