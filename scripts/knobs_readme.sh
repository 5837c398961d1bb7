#!/bin/sh
# knobs_readme.sh — rewrite README.md's knob table from common/xv_knobs.def
# (through `xenovia help --markdown`), between the knobs:begin/end markers.
# Usage: scripts/knobs_readme.sh [path/to/xenovia]   (default build/tools/xenovia)
# The ctest test tools_knobs fails while README.md and the table differ.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
xv=${1:-$here/build/tools/xenovia}
readme=$here/README.md
table=$(mktemp)
trap 'rm -f "$table" "$table.new"' EXIT
"$xv" help --markdown > "$table"
awk -v t="$table" '
  /<!-- knobs:begin/ { print; while ((getline l < t) > 0) print l; skip = 1; next }
  /<!-- knobs:end/   { skip = 0 }
  !skip { print }
' "$readme" > "$table.new"
grep -q '<!-- knobs:end' "$table.new" || { echo "knobs_readme.sh: markers missing in README.md" >&2; exit 1; }
cat "$table.new" > "$readme"
