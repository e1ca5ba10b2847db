#!/usr/bin/env bash
# Configure and build one flavour of Basira.
#   scripts/build.sh [release|werror|asan|fuzz] [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
dir=${2:-build-$flavour}
jobs=$(nproc 2>/dev/null || echo 2)
target=()
case "$flavour" in
  release) opts=(-DCMAKE_BUILD_TYPE=Release) ;;
  werror)  opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBASIRA_WERROR=ON) ;;
  asan)    opts=(-DCMAKE_BUILD_TYPE=Debug -DBASIRA_WERROR=ON -DBASIRA_SANITIZE=ON) ;;
  fuzz)    opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBASIRA_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++); target=(--target fuzz_all) ;;
  *) echo "unknown flavour $flavour" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j "$jobs" "${target[@]}"
