#!/usr/bin/env bash
# tests/check_format.sh - every C source and header follows the committed style
# (.clang-format, clang-format 14). Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
set -euo pipefail
cd "${BASIRA_SOURCE_DIR:?}"
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
else
  mapfile -t files < <(find include src tests fuzz bench -name '*.[ch]' 2>/dev/null | sort)
fi
[ "${#files[@]}" -gt 50 ] || { echo "FAIL: only ${#files[@]} C files found in $PWD"; exit 1; }
bad=$(clang-format --dry-run --Werror "${files[@]}" 2>&1 | grep -o '^[^:]*:[0-9]*:[0-9]*: error' | cut -d: -f1 | sort -u || true)
if [ -n "$bad" ]; then
  echo "FAIL: not formatted with the committed style (run clang-format -i on them):"
  echo "$bad"
  exit 1
fi
echo "ok: ${#files[@]} files follow .clang-format"
