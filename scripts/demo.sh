#!/usr/bin/env bash
# scripts/demo.sh — libxenovia in two minutes: an unmodified Python app, traced.
#
# Builds build/ if needed, starts the mock OpenAI upstream (plain HTTP on
# 127.0.0.1, random port), runs scripts/demo_app.py under
#     build/tools/xenovia run --trace-file T --policy scripts/demo_policy.rego -- python3 demo_app.py
# (or, while `xenovia run` is not built, with LD_PRELOAD=build/preload/libxenovia.so
# directly), then prints `build/tools/xenovia traces T` (or the raw JSON lines).
# The mock is started by pid and stopped by pid on exit. Nothing leaves 127.0.0.1.
# XV_BUILD_DIR (default build) picks the build tree; XV_DEMO_NO_BUILD=1 never builds
# (ctest's integ_demo uses both).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bdir=${XV_BUILD_DIR:-build}
lib="$bdir/preload/libxenovia.so"
cli="$bdir/tools/xenovia"
py=/usr/bin/python3

if { [ ! -f "$lib" ] || [ ! -x "$cli" ]; } && [ "${XV_DEMO_NO_BUILD:-0}" != 1 ]; then
    echo "==> building $bdir/ (cmake + make)"
    cmake -S . -B "$bdir" >/dev/null
    cmake --build "$bdir" -j2 -- -k >/dev/null 2>&1 || echo "==> (build had errors; using what was built)"
fi

work=$(mktemp -d)
mock_pid=
cleanup() {
    if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
    # under ctest the trace file goes to the secret sweep first (tests/sweep/keep.sh)
    if [ -f "$root/tests/sweep/keep.sh" ]; then . "$root/tests/sweep/keep.sh"; xv_keep_files "$work" traces.jsonl; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$py" tests/integration/mock_upstream.py --port-file "$work/port" --log "$work/upstream.jsonl" \
    --max-seconds 120 &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "mock upstream did not start" >&2; exit 1; }
base="http://127.0.0.1:$(cat "$work/port")/v1"
trace="$work/traces.jsonl"
echo "==> mock OpenAI upstream at $base"

unset LD_PRELOAD
if [ -x "$cli" ] && "$cli" run --help >/dev/null 2>&1; then
    echo "==> $cli run --trace-file $trace --policy scripts/demo_policy.rego -- $py scripts/demo_app.py"
    "$cli" run --trace-file "$trace" --policy scripts/demo_policy.rego -- "$py" scripts/demo_app.py "$base"
elif [ -f "$lib" ]; then
    echo "==> (xenovia run not built yet) LD_PRELOAD=$lib $py scripts/demo_app.py"
    LD_PRELOAD="$root/$lib" XENOVIA_TRACE_FILE="$trace" XENOVIA_POLICY=scripts/demo_policy.rego \
        "$py" scripts/demo_app.py "$base"
else
    echo "==> libxenovia.so is not built yet: running the app without the agent"
    "$py" scripts/demo_app.py "$base"
fi

echo
if [ ! -s "$trace" ]; then
    echo "==> no traces were written ($trace is empty)"
elif [ -x "$cli" ] && "$cli" traces "$trace" 2>/dev/null; then
    :
else
    echo "==> traces (raw JSON lines; \`xenovia traces\` not built yet):"
    cat "$trace"
fi
