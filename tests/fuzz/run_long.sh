#!/usr/bin/env bash
# tests/fuzz/run_long.sh — the long fuzz runs (outside CI): each libFuzzer
# target of a coverage-instrumented ASan+UBSan build, one at a time, at idle
# priority, bounded in time; prints one line per target with the real
# execution count for docs/testing.md.
#
#   CC=clang cmake -S . -B build-fuzz -DXV_FUZZ=ON && cmake --build build-fuzz
#   bash tests/fuzz/run_long.sh build-fuzz SECONDS [target ...]
#
# Seeds are copied from tests/fuzz/corpus/<name>/ into BUILD/fuzz-work/<name>/
# (the growing corpus stays in the build tree, never committed); crashers
# land in BUILD/fuzz-work/<name>-crash-*; minimise one and add it to the seed
# corpus so fuzz_replay_<name> replays it in every ctest run.
set -u
bdir=${1:?build dir}; secs=${2:?seconds per target}; shift 2
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$src"/fuzz_*.c; do n=$(basename "$f" .c); targets+=("${n#fuzz_}"); done
fi
mkdir -p "$bdir/fuzz-work"
for t in "${targets[@]}"; do
    bin="$bdir/tests/fuzz_$t"
    [ -x "$bin" ] || { echo "fuzz_$t: not built"; continue; }
    work="$bdir/fuzz-work/$t"
    mkdir -p "$work"
    [ -d "$src/corpus/$t" ] && cp -n "$src/corpus/$t"/* "$work"/ 2>/dev/null
    log="$bdir/fuzz-work/$t.log"
    start=$(date -u +%FT%TZ)
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 19 timeout $((secs + 120)) "$bin" -max_total_time="$secs" -print_final_stats=1 \
        -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$bdir/fuzz-work/$t-" "$work" \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    echo "fuzz_$t start=$start seconds=$secs executions=${execs:-?} exit=$rc crashers=$(ls "$bdir/fuzz-work/" | grep -c "^$t-crash\|^$t-leak\|^$t-timeout\|^$t-oom")"
done
