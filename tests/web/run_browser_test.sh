#!/bin/bash
# Browser test of the web app (tests/web/browser_test.js). Installs the pinned
# node modules with `npm ci` when they are missing (CI reaches the npm
# registry); skips (exit 77) without node, npm modules or /usr/bin/chromium.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -x "${BASIRA_CHROMIUM:-/usr/bin/chromium}" ] || { echo "SKIP: chromium not installed"; exit 77; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
  if command -v npm >/dev/null; then
    (cd "$here" && timeout 180 npm ci --no-audit --no-fund --loglevel=error) ||
      { echo "SKIP: npm ci failed in tests/web"; exit 77; }
  else
    echo "SKIP: node modules missing and npm not installed"; exit 77
  fi
fi
exec node "$here/browser_test.js" "$@"
