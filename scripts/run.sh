#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running Basira:
# installs the system packages, builds, then runs `basira` with your arguments.
#
#   scripts/run.sh check photo.jpg        # quality gate and skin tone of a photo
#   scripts/run.sh --help                 # every command
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release build >/dev/null
exec ./build/src/cli/basira "$@"
