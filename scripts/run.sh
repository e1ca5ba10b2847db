#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running Basira.
# Installs the system packages, builds, then:
#   scripts/run.sh                      starts the clinic node on embedded defaults:
#                                       bundled model, encrypted SQLite store in ./basira-data,
#                                       http://127.0.0.1:8080 (web app and /api/v1)
#   scripts/run.sh check photo.jpg      any other arguments run `basira` with them
#                                       (check, triage, evaluate, user, ...); triage runs
#                                       the lean `basira-triage` program (same output,
#                                       faster start: bench/triage_cold)
#
# First start of the clinic node: creates ./basira.key (32 random bytes; the database key —
# keep it safe and away from backups of ./basira-data: without it the data cannot be read)
# and an `admin` account whose password is printed once. Sign in as admin to add staff.
# Environment: BASIRA_DATA_DIR (./basira-data), BASIRA_KEY_FILE (./basira.key),
#              BASIRA_LISTEN (127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release build >/dev/null
B=./build/src/cli/basira
[ "${1:-}" = triage ] && exec "$B-triage" "${@:2}"
[ $# -gt 0 ] && exec "$B" "$@"

data=${BASIRA_DATA_DIR:-./basira-data}
key=${BASIRA_KEY_FILE:-./basira.key}
listen=${BASIRA_LISTEN:-127.0.0.1:8080}
if [ ! -e "$data/basira.db" ]; then
  umask 077
  [ -e "$key" ] || head -c 32 /dev/urandom > "$key"
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | cut -c1-20)
  pwfile=$(mktemp)
  printf '%s\n' "$pw" > "$pwfile"
  "$B" user add --data "$data" --key-file "$key" --role admin --password-file "$pwfile" admin
  rm -f "$pwfile"
  echo "Basira: first start. Administrator account: admin / $pw (shown once; change it)."
  echo "Basira: database key in $key: keep it safe, without it the data cannot be read."
fi
exec "$B" serve --data "$data" --key-file "$key" --listen "$listen"
