#!/usr/bin/env bash
# The hub's web app in Chromium (hub_browser_test.js) against a real hub on a private
# PostgreSQL with one clinic node's cases synced. Skips (77) without chromium or node.
# Usage: test_hub_web.sh MAKE_FIXTURES
set -u
B=${BASIRA_CLI:?}
FIX=${1:?make_fixtures}
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -x "${BASIRA_CHROMIUM:-/usr/bin/chromium}" ] || { echo "SKIP: chromium not installed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/../web/node_modules/playwright-core" ]; then
  command -v npm >/dev/null && (cd "$here/../web" && timeout 180 npm ci --no-audit --no-fund --loglevel=error) ||
    { echo "SKIP: playwright-core missing (cd tests/web && npm ci)"; exit 77; }
fi
T=$(mktemp -d)
trap 'hub_cleanup' EXIT
. "$here/lib.sh"
base=${HUB_TEST_PORT_BASE:-$((25500 + (RANDOM % 40) * 10))}
mkdir -p "$T/fx" && "$FIX" "$T/fx" >/dev/null || { echo "FAIL fixtures"; exit 1; }
MODEL=$T/fx/tiny.safetensors
pg_start $base
"$B" hub init --db "$DB" >/dev/null
printf 'derm-password-1\n' > "$T/dpw"; printf 'audit-password-1\n' > "$T/apw"
"$B" hub user add --db "$DB" --role dermatologist --password-file "$T/dpw" drA >/dev/null
"$B" hub user add --db "$DB" --role auditor --password-file "$T/apw" audA >/dev/null
hub_start $((base + 1))
node_new fes01
node_serve fes01 $((base + 2))
enrol fes01
high=$(new_case fes01 PT-HIGH true "$T/fx/photo.jpg")
low=$(api fes01 POST /cases -H 'Content-Type: application/json' \
  -d '{"patient_ref":"PT-LOW","age":30,"sex":"male","body_site":"arm","history":{"changed":false,"bleeding":false},"consent":{"care":true,"research":false,"remote_review":true,"recorded_by":"gp1"}}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api fes01 POST "/cases/$low/decision" -H 'Content-Type: application/json' \
  -d '{"accept_ai":false,"category":"low","reason":"benign naevus","referral":"none"}' >/dev/null
sync_once fes01 >/dev/null || { echo "FAIL sync"; exit 1; }
node "$here/hub_browser_test.js" "$(HUB)" fes01 "$high" "$low" "${BASIRA_BUILD_DIR:-$T}/tests/hub/artefacts"
rc=$?
[ $rc -eq 0 ] || exit $rc
check "the node pulls the reply sent from the browser, and sends the original asked for" "sync_once fes01 | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"replies\"]==1 and r[\"originals\"]==1, r'"
check "the hub has the original the browser asked for" "[ \$(psql_q 'SELECT count(*) FROM hub_images WHERE original_sha256 IS NOT NULL AND original_requested_by = '\"'drA'\") -eq 1 ]"
wl_reply() { # wl_reply CASE: the worklist's "reply" of that case (GET /cases), as JSON
  api fes01 GET /cases | python3 -c "import json,sys; print(json.dumps([c.get('reply') for c in json.load(sys.stdin)['items'] if c['id'] == $1][0]))"
}
check "GET /cases (worklist) shows the reply arrived: plan, unread" "wl_reply $high | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"plan\"]==\"biopsy\" and r[\"unread\"] is True and r[\"author\"]==\"drA\", r'"
check "and no reply on the case without one" "[ \"\$(wl_reply $low)\" = null ]"
node "$here/node_reply_browser_test.js" "http://127.0.0.1:$NODE_PORT_fes01" "$high" biopsy gp1 a-long-test-password "${BASIRA_BUILD_DIR:-$T}/tests/hub/artefacts" ||
  { echo "FAIL the node's web app shows the reply in its worklist"; fail=1; }
check "the reply is in the node's GET /cases/{id}" "api fes01 GET /cases/$high | grep -q 'mélanome suspecté'"
check "opened: the worklist no longer flags it" "wl_reply $high | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"unread\"] is False and r[\"count\"]==1, r'"
exit $fail
