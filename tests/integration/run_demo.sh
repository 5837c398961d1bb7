#!/usr/bin/env bash
# run_demo.sh BUILD_DIR — ctest's integ_demo: scripts/demo.sh must exit 0 and show
# three answered calls with trace ids and a traces table. Exit 77 (skipped) only
# while libxenovia.so is not built.
set -uo pipefail
bdir=${1:?usage: run_demo.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$bdir/preload/libxenovia.so" ]; then
    echo "skip: $bdir/preload/libxenovia.so is not built yet"
    exit 77
fi
out=$(XV_BUILD_DIR="$bdir" XV_DEMO_NO_BUILD=1 timeout 100 bash "$here/../../scripts/demo.sh" 2>&1)
rc=$?
printf '%s\n' "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 0 ] || fail "demo.sh exited $rc"
grep -Eq '^chat +\[200\] trace=[0-9a-f]{8,}' <<<"$out" || fail "no traced chat call"
grep -Eq '^stream +\[200\] trace=[0-9a-f]{8,}' <<<"$out" || fail "no traced stream call"
grep -Eq '^tools +\[(200|403)\]' <<<"$out" || fail "no tool call (200, or 403 once the policy is enforced)"
grep -Eq '3 calls' <<<"$out" || grep -q '"trace_id"' <<<"$out" || fail "no traces printed"
echo "demo OK"
