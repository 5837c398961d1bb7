# tests/sweep/keep.sh — sourced by shell scripts the test suite runs
# (scripts/demo.sh, tests/integration/clients/curl.sh) so that the agent's
# output in their temporary directories reaches the secret sweep
# (tests/sweep/sweep.py) although they remove those directories on exit.
#
#   xv_keep_files DIR NAME...
# Under ctest (XV_ARTIFACTS set, tests/sweep/artifacts.cmake) copies each
# existing regular file DIR/NAME of at most 8 MiB to
# $XV_ARTIFACTS/kept/<pid>-sh-<basename of DIR>/NAME; outside ctest it does
# nothing. Never fails and prints nothing, so the script's output and exit
# status stay what they were.
xv_keep_files() {
    local dir=$1 dst f
    shift
    [ -n "${XV_ARTIFACTS:-}" ] && [ -d "$dir" ] || return 0
    dst="$XV_ARTIFACTS/kept/$$-sh-$(basename "$dir")"
    for f in "$@"; do
        [ -f "$dir/$f" ] && [ ! -L "$dir/$f" ] || continue
        [ "$(stat -c %s "$dir/$f" 2>/dev/null || echo 0)" -le 8388608 ] || continue
        mkdir -p "$dst" 2>/dev/null && cp "$dir/$f" "$dst/" 2>/dev/null
    done
    return 0
}
