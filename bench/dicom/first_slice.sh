#!/usr/bin/env bash
# First slice in the browser: a CT study sent as one item through the JSON API
# of a running `renkei serve` (SQLite), then the reading doctor's headless
# Chromium opens the thread and clicks its viewer link; the time from opening
# the thread (and from the click) to the first slice drawn in the viewport
# (tests/e2e/clients/viewer.cjs in bench mode), REPEAT times (the first is the
# cold one).
#
# Usage: bash bench/dicom/first_slice.sh [SLICES] [STUDY_DIR] [REPEAT]
#   SLICES     slices to generate (512×512, default 2048 ≈ 1 GiB) when no STUDY_DIR
#   STUDY_DIR  an existing study folder (bench/dicom/run.sh passes its own)
#   RENKEI_BENCH_BIN  a prebuilt renkei binary (default: the release build)
# Prints the figures and `RESULT first_slice_ms=…` (median from opening the
# thread) for run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renkei/target}"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
slices="${1:-2048}"
study="${2:-}"
repeat="${3:-5}"

. scripts/prereqs.sh
renkei_install_prereqs chromium:chromium node:nodejs npm:npm curl:curl
node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/renkei/node"
if [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm install --no-audit --no-fund --silent playwright-core@1.65.1)
fi
export NODE_PATH="${RENKEI_NODE_PATH:-$node_dir/node_modules}"

if [ -z "${RENKEI_BENCH_BIN:-}" ]; then
    cargo build --release -q -p renkei --bin renkei
fi
renkei="${RENKEI_BENCH_BIN:-$CARGO_TARGET_DIR/release/renkei}"

work="$(mktemp -d "${TMPDIR:-/var/tmp}/renkei-bench-viewer.XXXXXX")"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$study" ]; then
    python3 -c 'import pydicom, numpy' 2>/dev/null || python3 -m pip install -q pydicom numpy
    echo "== generating $slices CT slices (512×512) with pydicom"
    study="$work/study"
    python3 imaging/tests/py/oracle.py study "$study" "$slices" 512
fi
mapfile -t files < <(find "$study" -maxdepth 1 -type f -name '*.dcm' | sort)
echo "== first slice in the browser: ${#files[@]} files, $(du -sm "$study" | cut -f1) MiB"

data="$work/data"
admin() { RUST_LOG=warn RENKEI_SECOND_FACTOR=optional "$renkei" --data-dir "$data" admin "$@"; }
admin facility add --code 3710123450 --name "さぬき中央病院" >/dev/null
admin facility add --code 3710300017 --name "ことひら内科クリニック" >/dev/null
letter_field() { sed -n "s|.*$1[^:]*: *||p" | head -1 | tr -d '[:space:]'; }
gp_letter="$(admin user add --role doctor --facility 3710300017 --name "琴平 健")"
rad_letter="$(admin user add --role doctor --facility 3710123450 --name "讃岐 一郎")"
gp_id="$(letter_field 'ユーザーID / ID' <<<"$gp_letter")"
gp_pw="$(letter_field 'Initial password' <<<"$gp_letter")"
rad_id="$(letter_field 'ユーザーID / ID' <<<"$rad_letter")"
rad_pw="$(letter_field 'Initial password' <<<"$rad_letter")"

"$renkei" --data-dir "$data" --listen 127.0.0.1:0 --second-factor optional serve \
    >"$work/renkei.out" 2>"$work/renkei.err" &
pid=$!
for _ in $(seq 1 400); do
    grep -q '^renkei listening on ' "$work/renkei.out" 2>/dev/null && break
    sleep 0.05
done
addr="$(sed -n 's|^renkei listening on https://||p' "$work/renkei.out" | head -1)"
[ -n "$addr" ] || { cat "$work/renkei.out" "$work/renkei.err" >&2; exit 1; }
base="https://localhost:${addr##*:}"
curl_() { curl -sk --resolve "localhost:${addr##*:}:127.0.0.1" "$@"; }

# Signs in with the issued password and replaces it; the jar holds the session.
ready() {
    local jar="$1" id="$2" pw="$3"
    curl_ -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
        -d "{\"id\":\"$id\",\"password\":\"$pw\"}" "$base/api/v1/session" | grep -q 200
    curl_ -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
        -d "{\"current_password\":\"$pw\",\"new_password\":\"$pw-Mine-2026\"}" "$base/api/v1/password" | grep -q 204
}
ready "$work/gp.jar" "$gp_id" "$gp_pw" || { echo "sign-in of the sender failed" >&2; exit 1; }
ready "$work/rad.jar" "$rad_id" "$rad_pw" || { echo "sign-in of the reader failed" >&2; exit 1; }

echo "== sending the study through POST /api/v1/envelopes"
rad_plain="$(tr -d '-' <<<"$rad_id")"
envelope="$(python3 - "$rad_plain" "${files[@]}" <<'EOF'
import json, os, sys
print(json.dumps({
    "kind": "reading_request", "to": [{"account": sys.argv[1]}],
    "subject": "胸部CT 読影依頼", "patient_id": "12345", "patient_name": "山田　太郎",
    "body": "ご高診をお願いします。",
    "consent": {"obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美"},
    "attachments": [{"name": os.path.basename(p)} for p in sys.argv[2:]],
}, ensure_ascii=False))
EOF
)"
config="$work/upload.curl"
{
    printf 'form-string = "envelope=%s"\n' "$(sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$envelope")"
    for f in "${files[@]}"; do printf 'form = "file=@%s;filename=%s"\n' "$f" "$(basename "$f")"; done
} >"$config"
t0=$(date +%s.%N)
sent="$(curl_ -b "$work/gp.jar" -K "$config" "$base/api/v1/envelopes")"
t1=$(date +%s.%N)
item="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$sent" 2>/dev/null)" \
    || { echo "sending failed: $sent" >&2; tail -5 "$work/renkei.err" >&2; exit 1; }
python3 -c 'import sys; print(f"sent in {float(sys.argv[2]) - float(sys.argv[1]):.1f} s over HTTPS")' "$t0" "$t1"

# Where the time goes: each request of that path alone, from the server's side
# (curl, warm, median of 5; time to the last byte).
timed() {
    local i t
    for i in 1 2 3 4 5; do
        curl_ -b "$work/rad.jar" -L -o /dev/null -w '%{time_total}\n' "$base$1"
    done | sort -n | sed -n 3p
}
echo "== the requests one by one (median of 5, warm):"
for path in "/items/$item" "/items/$item/viewer" "/api/v1/envelopes/$item/attachments/0/render"; do
    printf '  %-60s %6.1f ms\n' "$path" "$(python3 -c 'import sys; print(float(sys.argv[1]) * 1000)' "$(timed "$path")")"
done

echo "== the reader's Chromium: thread → viewer link → first slice ($repeat times)"
cfg="$(python3 -c 'import json,sys; print(json.dumps({"mode":"bench","base":sys.argv[1],"id":sys.argv[2],"password":sys.argv[3],"item":sys.argv[4],"repeat":int(sys.argv[5])}))' \
    "$base" "$rad_id" "$rad_pw-Mine-2026" "$item" "$repeat")"
# The browser profile goes into the work folder, removed on exit.
out="$(TMPDIR="$work" node tests/e2e/clients/viewer.cjs "$cfg" | tail -1)"
python3 - "$out" <<'EOF'
import json, statistics, sys
r = json.loads(sys.argv[1])
if "error" in r or r.get("errors"):
    sys.exit(f"viewer failed: {r}")
threads = [x["thread_to_first_slice_ms"] for x in r["runs"]]
clicks = [x["click_to_first_slice_ms"] for x in r["runs"]]
navs = [x["navigation_to_first_slice_ms"] for x in r["runs"]]
ms = lambda v: ", ".join(f"{x:.0f}" for x in v)
print(f"series of {r['slices']} slices, first slice drawn in the viewer:")
print(f"  from opening the thread:      first {threads[0]:.0f} ms, median {statistics.median(threads):.0f} ms ({ms(threads)})")
print(f"  from the click on its link:   first {clicks[0]:.0f} ms, median {statistics.median(clicks):.0f} ms ({ms(clicks)})")
print(f"  from the viewer's navigation start (in the page): median {statistics.median(navs):.0f} ms")
print(f"RESULT first_slice_ms={statistics.median(threads):.0f}")
print(f"RESULT first_slice_cold_ms={threads[0]:.0f}")
print(f"RESULT first_slice_click_ms={statistics.median(clicks):.0f}")
EOF
