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
#
# -max_len per target (docs/testing.md): the longest input that still reaches
# every structure and limit the target parses. Each target has a control bit
# for small limits (head 64, SSE event 16, body 300, inflation 4096, ...), so
# every "over the limit" path is reachable well below these lengths.
#   http 2048, cassette 8192 (a streamed recording), gzip 20480 (a payload
#   the target compresses itself must pass the 4096-byte small bound, so the
#   bound is met exactly by one slice and passed by the next), others 4096.
# Leaks stay checked (detect_leaks=1: libFuzzer checks an input whose mallocs
# and frees do not balance).
set -u
max_len_of() {
    case "$1" in
        http) echo 2048 ;;
        cassette) echo 8192 ;;
        gzip) echo 20480 ;;
        *) echo 4096 ;;
    esac
}
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
    log="$bdir/fuzz-work/$t.$(date -u +%H%M%S).log"
    start=$(date -u +%FT%TZ)
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 19 timeout $((secs + 120)) "$bin" -max_total_time="$secs" -print_final_stats=1 \
        -max_len="$(max_len_of "$t")" \
        -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$bdir/fuzz-work/$t-" "$work" \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]* ft: [0-9]*\|exec/s: [0-9]*' | tr '\n' ' ')
    echo "fuzz_$t start=$start seconds=$secs executions=${execs:-?} exit=$rc load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /) ${last}crashers=$(ls "$bdir/fuzz-work/" | grep -c "^$t-crash\|^$t-leak\|^$t-timeout\|^$t-oom\|^$t-slow")"
done
