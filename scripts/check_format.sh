#!/usr/bin/env bash
# Checks that every tracked .c and .h file is formatted as .clang-format says,
# without changing any: prints clang-format's complaints and the files that
# differ. Fix a file with `clang-format -i FILE`.
#
# Usage: scripts/check_format.sh   Exit: 0 all formatted, 1 some differ.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
mapfile -t files < <(git ls-files '*.c' '*.h')
bad=()
for f in "${files[@]}"; do
    "$CLANG_FORMAT" --dry-run --Werror "$f" 2>/dev/null || bad+=("$f")
done
if ((${#bad[@]})); then
    for f in "${bad[@]}"; do
        n=$("$CLANG_FORMAT" "$f" | diff "$f" - | grep -c '^<' || true)
        echo "check_format: $f: $n line(s) differ"
    done
    echo "check_format: ${#bad[@]} of ${#files[@]} files differ from .clang-format"
    exit 1
fi
echo "check_format: ${#files[@]} files formatted"
