#!/usr/bin/env bash
# The sync over bad links, with real PostgreSQL, hub and node (label slow):
#   - a throttled link (32 kB/s, 300 ms, 5% of connections dropped): one round with 20 new
#     cases with 12 MP photos completes; bytes on the link per case <= 1/3 of the photos;
#   - a link cut at random byte offsets (mid-batch, mid-photo): rounds are retried until one
#     succeeds; every change is at the hub exactly once and the audit chain verifies;
#   - the node's clock 2 hours ahead (faketime): its round still succeeds and verifies;
#   - erasure: a case deleted at the node is erased at the hub.
# Usage: test_hub_faults.sh MAKE_FIXTURES
set -u
B=${BASIRA_CLI:?}
FIX=${1:?make_fixtures}
T=$(mktemp -d)
PROXY_PID=
trap '[ -n "$PROXY_PID" ] && kill $PROXY_PID 2>/dev/null; hub_cleanup' EXIT
. "$(dirname "$0")/lib.sh"
PY=
for p in /usr/bin/python3 python3; do "$p" -c 'import PIL, numpy' 2>/dev/null && PY=$p && break; done
[ -n "$PY" ] || { echo "SKIP: python3 with PIL and numpy (python3-pil) needed to make the photos"; exit 77; }
base=${HUB_TEST_PORT_BASE:-$((25000 + (RANDOM % 90) * 10 + 5))}

mkdir -p "$T/fx" && "$FIX" "$T/fx" >/dev/null || { echo "FAIL fixtures"; exit 1; }
MODEL=$T/fx/tiny.safetensors
# 26 distinct 12 MP phone-like photos (the fixture lesion, upscaled, with sensor noise).
"$PY" - "$T/fx" <<'PY'
import sys
import numpy as np
from PIL import Image
d = sys.argv[1]
im = Image.open(d + "/photo.jpg").resize((4000, 3000), Image.BICUBIC)
base = np.asarray(im).astype("int16")
for i in range(26):
    a = base + np.random.default_rng(i).integers(-4, 5, size=base.shape)
    Image.fromarray(a.clip(0, 255).astype("uint8")).save("%s/big%02d.jpg" % (d, i), quality=90)
PY

pg_start $base
"$B" hub init --db "$DB" >/dev/null
printf 'derm-password-2\n' > "$T/dpw"
"$B" hub user add --db "$DB" --role dermatologist --password-file "$T/dpw" drB >/dev/null
hub_start $((base + 1))
node_new n1
node_serve n1 $((base + 2))
enrol n1
sync_once n1 >/dev/null

proxy() { # proxy PORT ARGS...: the faulty link in front of the hub
  local port=$1; shift
  [ -n "$PROXY_PID" ] && kill $PROXY_PID 2>/dev/null && wait $PROXY_PID 2>/dev/null
  rm -f "$T/link.stats"
  python3 "$(dirname "$0")/faulty_link.py" --listen $port --to $HUB_PORT --stats "$T/link.stats" "$@" > "$T/proxy.out" &
  PROXY_PID=$!
  for _ in $(seq 50); do grep -q ready "$T/proxy.out" 2>/dev/null && return 0; sleep 0.1; done
  echo "FAIL proxy did not start"; exit 1
}
via() { # via PORT NODE: one round through the proxy
  "$B" sync --data "$T/$2" --key-file "$T/$2.key" --hub "http://127.0.0.1:$1" --once
}

# 1. Throttled link: 20 cases with photos in one round.
orig=0
for i in $(seq -w 0 19); do
  new_case n1 "TH-$i" true "$T/fx/big$i.jpg" >/dev/null
  orig=$((orig + $(stat -c %s "$T/fx/big$i.jpg")))
done
proxy $((base + 3)) --rate 32000 --latency 0.3 --drop 0.05 --seed 7
start=$(date +%s)
check "a round of 20 cases with photos completes on the throttled link" "via $((base + 3)) n1 > '$T/th.json'"
took=$(( $(date +%s) - start ))
sleep 0.5
link=$(awk '{s += $1 + $2} END {print s + 0}' "$T/link.stats")
echo "     (round: ${took} s; link: $link bytes for 20 cases = $((link / 20)) B/case; original photos $((orig / 20)) B/case; $(grep -c ' 1$' "$T/link.stats") connections dropped)"
check "bytes on the link per case <= 1/3 of the original photos" "[ $((link * 3)) -le $orig ]"
check "all 20 at the hub with their photo" "[ \$(psql_q \"SELECT count(*) FROM hub_cases WHERE patient_ref LIKE 'TH-%'\") -eq 20 ] && [ \$(psql_q \"SELECT count(*) FROM hub_images i JOIN hub_cases c USING (node_id, case_id) WHERE c.patient_ref LIKE 'TH-%' AND i.photo_sha256 IS NOT NULL\") -eq 20 ]"
sha=$(psql_q "SELECT sha256 FROM hub_photos ORDER BY bytes DESC LIMIT 1")
curl -s -u drB:derm-password-2 -o "$T/hubphoto.jpg" "$(HUB)/api/v1/photos/$sha"
check "the photos at the hub are the budgeted copy (long side <= 1024 px)" "'$PY' -c 'from PIL import Image; im = Image.open(\"$T/hubphoto.jpg\"); assert max(im.size) <= 1024, im.size'"

# 2. A link cut at random offsets, no throttling: retry rounds until one succeeds.
for i in $(seq 20 24); do new_case n1 "CUT-$i" true "$T/fx/big$i.jpg" >/dev/null; done
api n1 POST "/cases/$(new_case n1 CUT-D true "$T/fx/big20.jpg")/decision" -H 'Content-Type: application/json' \
  -d '{"accept_ai":false,"category":"high","reason":"bleeds","referral":"requested"}' >/dev/null
proxy $((base + 4)) --cut 0.6 --seed 11
ok=0
for attempt in $(seq 1 40); do
  if via $((base + 4)) n1 > "$T/cut.json" 2>/dev/null; then ok=1; break; fi
done
cuts=$(grep -c ' 1$' "$T/link.stats")
echo "     (succeeded on attempt $attempt; $cuts connections cut mid-transfer)"
check "rounds over a cutting link eventually succeed" "[ $ok -eq 1 ] && [ $cuts -ge 1 ]"
check "every change exactly once (no gap, no duplicate)" "[ \$(psql_q 'SELECT count(*) FROM (SELECT node_id, max(seq) m, count(*) c FROM hub_changes GROUP BY node_id) x WHERE m <> c') -eq 0 ] && [ \$(psql_q \"SELECT count(*) FROM hub_cases WHERE patient_ref LIKE 'CUT-%'\") -eq 6 ]"
check "the audit chain verifies at the hub" "'$B' hub nodes --db '$DB' | python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; assert all(x[\"audit_ok\"] for x in r), r'"

# 3. The node's clock 2 hours ahead.
if command -v faketime >/dev/null; then
  new_case n1 CLOCK true "$T/fx/big00.jpg" >/dev/null
  check "a node 2 h ahead syncs" "faketime -f '+2h' '$B' sync --data '$T/n1' --key-file '$T/n1.key' --hub '$(HUB)' --once >/dev/null"
  check "and its chain (timestamps 2 h ahead) verifies" "'$B' hub nodes --db '$DB' | grep -q '\"audit_ok\": *true' && '$B' hub cases --db '$DB' --json | grep -q CLOCK"
else
  echo "SKIP clock test: faketime not installed"
fi

# 4. Erasure at both ends: retention at the node deletes old cases (3 days on); the hub follows.
if command -v faketime >/dev/null; then
  printf '{"retention_days": {"cases": 1, "photos": 1}}\n' > "$T/n1/config.json"
  n_hub=$(psql_q "SELECT count(*) FROM hub_cases")
  faketime -f '+3d' "$B" purge --data "$T/n1" --key-file "$T/n1.key" >/dev/null
  sync_once n1 >/dev/null
  check "cases erased at the node ($n_hub) are erased at the hub, photos too" "[ \$(psql_q 'SELECT count(*) FROM hub_cases') -eq 0 ] && [ \$(psql_q 'SELECT count(*) FROM hub_photos') -eq 0 ] && [ \$(psql_q 'SELECT count(*) FROM hub_images') -eq 0 ]"
  check "the audit chain still verifies after the erasure" "'$B' hub nodes --db '$DB' | grep -q '\"audit_ok\": *true'"
else
  echo "SKIP erasure test: faketime not installed"
fi
exit $fail
