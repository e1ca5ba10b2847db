#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test:
# installs the system packages, then builds and runs the whole suite twice —
# a normal build with warnings as errors, and an AddressSanitizer + UBSan build —
# then the fuzz targets for a short bounded time.
# Tests that need ../shared/data skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build with warnings as errors"
scripts/build.sh werror build-werror
(cd build-werror && ctest --output-on-failure -j "$jobs" --timeout 900)

echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
scripts/build.sh asan build-asan
(cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 1200 -LE slow)

if [ -f fuzz/CMakeLists.txt ]; then
  echo "== fuzz targets (libFuzzer, bounded runs)"
  scripts/build.sh fuzz build-fuzz
  (cd build-fuzz && ctest --output-on-failure -j "$jobs" -L fuzz)
fi
