#!/usr/bin/env bash
# scripts/hot_functions.sh [BUILD_DIR] — regenerate preload/hot_functions.txt:
# the agent's functions that API calls run, found by callgrind runs of real
# clients under the agent against bench_server on loopback (group 1: the
# bench client's one-call mode and tests/perf/first_call's TLS call, one with
# request parameters and one without; group 2: the bench client's keep-alive
# modes over TLS and plain HTTP, curl, and Python's urllib over TLS). Only
# the client runs under valgrind (env and timeout run outside it). Prints
# the new list's size; review the diff before committing it. Needs valgrind,
# curl, openssl and /usr/bin/python3.
#
# valgrind's CPU has no SHA-NI, so sha256's blocks_ni never runs here; the
# names in EXTRA are kept by hand for that reason (and for code that runs
# at exit, after callgrind's last dump). For the same reason the portable
# `blocks` runs here where a CPU with SHA-NI runs blocks_ni: the names in
# NOT_NATIVE go to group 2 (on a CPU without SHA-NI they are one more window
# of code for the first call).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
LIB=$BUILD/preload/libxenovia.so
EXTRA="blocks_ni probe xv_exp_otlp_cfg_unref xv_patch_elf_close"
NOT_NATIVE="blocks"
for t in valgrind callgrind_annotate curl openssl /usr/bin/python3 cc; do
    command -v "$t" >/dev/null || { echo "hot_functions.sh: $t not found" >&2; exit 1; }
done
[ -f "$LIB" ] || { echo "hot_functions.sh: build $LIB first" >&2; exit 1; }

WORK=$(mktemp -d)
SRV_PID=
cleanup() { [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cc -std=c11 -O2 -o "$WORK/bench_server" "$ROOT/bench/bench_server.c" -lssl -lcrypto -lpthread
cc -std=c11 -O2 -o "$WORK/bench_client" "$ROOT/bench/bench_client.c" -lssl -lcrypto
cc -std=c11 -O2 -o "$WORK/first_call" "$ROOT/tests/perf/first_call.c" -lssl -lcrypto
bash "$ROOT/tests/integration/certs.sh" "$WORK/certs" >/dev/null
CA=$WORK/certs/ca.pem
"$WORK/bench_server" --cert "$WORK/certs/server.pem" --key "$WORK/certs/server.key" \
    --port-file "$WORK/tls_port" --plain-port-file "$WORK/plain_port" --max-seconds 600 &
SRV_PID=$!
for _ in $(seq 100); do [ -s "$WORK/tls_port" ] && [ -s "$WORK/plain_port" ] && break; sleep 0.05; done
TLS=$(cat "$WORK/tls_port") PLAIN=$(cat "$WORK/plain_port")

export XENOVIA_TRACE_FILE=$WORK/traces.jsonl
OUTDIR=$WORK/rest
mkdir -p "$WORK/first" "$WORK/rest"
# grind [-u VAR ...] -- PROGRAM ARGS: PROGRAM under callgrind and the agent
# (valgrind adds its own preloads to LD_PRELOAD), VARs unset; a forked
# child (first_call's server) is not profiled.
grind() {
    local unset=()
    while [ "$1" != -- ]; do unset+=("$1"); shift; done
    shift
    env "${unset[@]}" LD_PRELOAD="$LIB" timeout 600 valgrind -q --tool=callgrind \
        --child-silent-after-fork=yes --callgrind-out-file="$OUTDIR/cg.%p.out" "$@" >/dev/null 2>&1
}
# group 1: what a process's first TLS chat call runs
OUTDIR=$WORK/first grind -- "$WORK/bench_client" once tls "$TLS" "$CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -keyout "$WORK/fc.key" -out "$WORK/fc.pem" 2>/dev/null
OUTDIR=$WORK/first grind -- "$WORK/first_call" tls "$WORK/fc.pem" "$WORK/fc.key"
grind -- "$WORK/bench_client" chat tls "$TLS" "$CA" 5 1
grind -- "$WORK/bench_client" chat plain "$PLAIN" "$CA" 5 1
grind -u CURL_CA_BUNDLE -- curl -s --cacert "$CA" -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
    "https://127.0.0.1:$TLS/v1/chat/completions" -o /dev/null
cat >"$WORK/client.py" <<EOF
import json, ssl, urllib.request
ctx = ssl.create_default_context(cafile="$CA")
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
for _ in range(2):
    req = urllib.request.Request("https://127.0.0.1:$TLS/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, context=ctx).read()
EOF
grind -u SSL_CERT_FILE -- /usr/bin/python3 "$WORK/client.py"

OUT=$ROOT/preload/hot_functions.txt
names() { # the agent's functions in the callgrind files of directory $1
    for f in "$1"/cg.*.out; do
        callgrind_annotate --threshold=100 "$f" 2>/dev/null | grep "$LIB" | grep -v '???' |
            sed -E 's/.*:([A-Za-z_][A-Za-z0-9_.]*)[^A-Za-z0-9_.].*/\1/'
    done | sed -E 's/\.(part|constprop|isra|cold)\.[0-9]+//g' | grep -E '^[A-Za-z_][A-Za-z0-9_]*$'
}
printf '%s\n' $NOT_NATIVE | sort -u >"$WORK/not_native.txt"
{ names "$WORK/first"; printf '%s\n' $EXTRA; } | sort -u | comm -23 - "$WORK/not_native.txt" \
    >"$WORK/g1.txt"
{ names "$WORK/rest"; cat "$WORK/not_native.txt"; } | sort -u | comm -23 - "$WORK/g1.txt" \
    >"$WORK/g2.txt"
{
    sed -n '/^# [12]\. /!{/^#/p}' "$OUT"
    echo "# 1. the first TLS chat call"
    cat "$WORK/g1.txt"
    echo "# 2. the rest"
    cat "$WORK/g2.txt"
} >"$WORK/hot.txt"
mv "$WORK/hot.txt" "$OUT"
echo "preload/hot_functions.txt: $(grep -vc '^#' "$OUT") functions"
