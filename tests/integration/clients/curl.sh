#!/usr/bin/env bash
# curl.sh — integration client driving the curl command line.
#
# Usage: curl.sh BASE_URL CA_FILE|- SCENARIO
# All calls of a scenario are made by ONE curl process (`--next` between
# them), so they share one keep-alive connection. Output is `curl -i` (status
# line, response headers, body) per call with CRs removed; response headers
# named X-Xenovia-* are rewritten as `XV-HEADER <lower-case name>: value`
# (run_matrix.py compares everything else byte for byte). The 100 MiB
# download goes to /dev/null and prints only its size and sha256.
# TLS is verified against the test CA only: CURL_CA_BUNDLE/SSL_CERT_FILE,
# which this machine exports globally, are reset for this process.
set -euo pipefail
base=${1:?usage: curl.sh BASE_URL CA_FILE|- SCENARIO}
ca=${2:?}
scenario=${3:?}
here=$(cd "$(dirname "$0")" && pwd)
unset SSL_CERT_DIR REQUESTS_CA_BUNDLE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
if [ "$ca" = "-" ]; then
    unset CURL_CA_BUNDLE SSL_CERT_FILE
    tls=()
else
    export CURL_CA_BUNDLE="$ca" SSL_CERT_FILE="$ca"
    tls=(--cacert "$ca")
fi
work=$(mktemp -d)
# under ctest curl's stderr (where agent lines would land) goes to the secret
# sweep before the directory is removed (tests/sweep/keep.sh)
. "$here/../../sweep/keep.sh"
trap 'xv_keep_files "$work" err; rm -rf "$work"' EXIT
auth="Authorization: Bearer sk-test-XENOVIA-SECRET-123"

args=()
first=1
while IFS=$'\t' read -r idx method path stream gz chunked extra body; do
    [ $first -eq 1 ] || args+=(--next)
    first=0
    args+=(-sS -i --noproxy '*' "${tls[@]}" -H "$auth" -X "$method"
           -w "\n== end of call $idx: http %{http_code}\n")
    if [ "$body" != "-" ]; then
        args+=(-H "Content-Type: application/json" --data-binary "@$body")
    fi
    [ "$stream" = 1 ] && args+=(-N)
    [ "$gz" = 1 ] && args+=(--compressed)
    [ "$chunked" = 1 ] && args+=(-H "Transfer-Encoding: chunked")
    [ "$extra" != "-" ] && args+=(-H "$extra")
    if [[ "$path" == /download/* ]]; then
        # Body to a file so the transcript stays small; -i headers go there too.
        args+=(-o "$work/download" -w "download bytes: %{size_download}\n")
    fi
    args+=("$base$path")
done < <(/usr/bin/python3 "$here/xvclient.py" manifest "$scenario" "$work")

# A failed transfer (the `cut` scenario) is part of the transcript, not an error here.
rc=0
curl "${args[@]}" > "$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 0 ] || echo "== curl exit $rc: $(sed -e 's/^curl: ([0-9]*) //' -e 's/ with [0-9]* bytes remaining to read//' "$work/err" | sort -u | tr '\n' ' ')" >> "$work/out"
if [ -f "$work/download" ]; then
    # The download's own header block precedes its bytes: strip it and hash the rest.
    /usr/bin/python3 - "$work/download" >> "$work/out" <<'PY'
import hashlib, sys
data = open(sys.argv[1], "rb").read()
head, sep, body = data.partition(b"\r\n\r\n")
for line in head.decode("latin-1").split("\r\n"):
    print("download header: " + line if not line.lower().startswith("x-xenovia-") else line)
print("download body: %d bytes sha256 %s" % (len(body), hashlib.sha256(body).hexdigest()))
PY
fi
sed -e 's/\r$//' -e 's/^\([Xx]-[Xx][Ee][Nn][Oo][Vv][Ii][Aa]-[^:]*\): */XV-HEADER \L\1\E: /' "$work/out"
