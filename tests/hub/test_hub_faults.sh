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
hub_login drB derm-password-2 >/dev/null
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
via() { # via PORT NODE [options]: one round through the proxy (originals: see section 2b)
  local port=$1 n=$2; shift 2
  "$B" sync --data "$T/$n" --key-file "$T/$n.key" --hub "http://127.0.0.1:$port" --once --originals never "$@"
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
hcurl drB -o "$T/hubphoto.jpg" "$(HUB)/api/v1/photos/$sha"
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

# 2b. Resume inside a photo: three stored originals (the node's cleaned copies of 12 MP photos)
# in chunks of 16 KiB (--chunk-kib 16, so that each photo has many) over a link that cuts 40% of
# the connections at a random byte inside a chunk. A cut costs the chunk in flight: the retry
# (or the next round, after asking the hub) resumes from the last acknowledged chunk, and no
# acknowledged chunk travels twice.
node_new n2
node_serve n2 $((base + 5))
enrol n2
for i in 21 22 23; do new_case n2 "RES-$i" true "$T/fx/big$i.jpg" >/dev/null; done
sync_once n2 --originals never >/dev/null
proxy $((base + 6)) --cut 0.4 --cut-max 18000 --seed 5
ok=0
for attempt in $(seq 1 40); do
  if via $((base + 6)) n2 --originals always --chunk-kib 16 > "$T/res.json" 2>/dev/null; then ok=1; break; fi
done
sleep 0.5
orig2=$(psql_q "SELECT coalesce(sum(p.bytes), 0) FROM hub_images i JOIN hub_cases c USING (node_id, case_id) JOIN hub_photos p ON p.sha256 = i.original_sha256 WHERE c.patient_ref LIKE 'RES-%'")
check "the originals arrive over a link cut inside photos" "[ $ok -eq 1 ] && [ \$(psql_q \"SELECT count(*) FROM hub_images i JOIN hub_cases c USING (node_id, case_id) WHERE c.patient_ref LIKE 'RES-%' AND i.original_sha256 IS NOT NULL\") -eq 3 ]"
"$PY" - "$T/link.stats" "$orig2" > "$T/resume.txt" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
cut = [u for u, d, c in rows if c and u > 0]
whole = [u for u, d, c in rows if not c]
print(len(cut), max(cut or [0]), sum(cut), sum(whole) - int(sys.argv[2]), len(whole))
PY
read -r n_cut max_cut resent overhead n_whole < "$T/resume.txt"
echo "     ($attempt round(s); originals $orig2 bytes in all; $n_cut connections cut inside a transfer, at most $max_cut bytes each, $resent bytes lost to cuts = $((resent / (n_cut > 0 ? n_cut : 1))) per cut, against $((orig2 / 3)) per photo resent whole; $n_whole requests delivered carried $overhead bytes beyond the photos)"
check "some connections were cut inside a photo" "[ $n_cut -ge 3 ] && [ $orig2 -gt 0 ]"
check "a cut costs at most one chunk (16 KiB + 2 KiB of request)" "[ $max_cut -le $((16384 + 2048)) ]"
check "no acknowledged chunk travelled twice (delivered bytes beyond the photos <= 2 KiB a request + 16 KiB for the round's audit batch)" "[ $overhead -ge 0 ] && [ $overhead -le $((n_whole * 2048 + 16384)) ]"
for c in $(api n2 GET /cases | python3 -c 'import json,sys; [print(c["id"]) for c in json.load(sys.stdin)["items"]]'); do
  iid=$(api n2 GET "/cases/$c" | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["id"])')
  api n2 GET "/cases/$c/images/$iid" -o "$T/n2photo.jpg"
  sha256sum "$T/n2photo.jpg" | cut -d' ' -f1
done | sort > "$T/n2.sha"
check "each original at the hub is the node's photo, byte for byte (SHA-256)" "psql_q \"SELECT original_sha256 FROM hub_images i JOIN hub_cases c USING (node_id, case_id) WHERE c.patient_ref LIKE 'RES-%'\" | sort | cmp -s - '$T/n2.sha' && [ \$(psql_q 'SELECT count(*) FROM hub_upload_chunks') -eq 0 ]"
check "every change exactly once after the cuts" "[ \$(psql_q 'SELECT count(*) FROM (SELECT node_id, max(seq) m, count(*) c FROM hub_changes GROUP BY node_id) x WHERE m <> c') -eq 0 ]"

# 3. The node's clock 2 hours ahead.
if command -v faketime >/dev/null; then
  new_case n1 CLOCK true "$T/fx/big00.jpg" >/dev/null
  check "a node 2 h ahead syncs" "faketime -f '+2h' '$B' sync --data '$T/n1' --key-file '$T/n1.key' --hub '$(HUB)' --once --originals never >/dev/null"
  check "and its chain (timestamps 2 h ahead) verifies" "'$B' hub nodes --db '$DB' | grep -q '\"audit_ok\": *true' && '$B' hub cases --db '$DB' --json | grep -q CLOCK"
else
  echo "SKIP clock test: faketime not installed"
fi

# 4. Erasure at both ends: retention at the node deletes old cases (3 days on); the hub follows.
if command -v faketime >/dev/null; then
  n_hub=$(psql_q "SELECT count(*) FROM hub_cases")
  for n in n1 n2; do
    printf '{"retention_days": {"cases": 1, "photos": 1}}\n' > "$T/$n/config.json"
    faketime -f '+3d' "$B" purge --data "$T/$n" --key-file "$T/$n.key" >/dev/null
    sync_once $n --originals never >/dev/null
  done
  check "cases erased at the nodes ($n_hub) are erased at the hub, photos and originals too" "[ \$(psql_q 'SELECT count(*) FROM hub_cases') -eq 0 ] && [ \$(psql_q 'SELECT count(*) FROM hub_photos') -eq 0 ] && [ \$(psql_q 'SELECT count(*) FROM hub_images') -eq 0 ]"
  check "the audit chain still verifies after the erasure" "'$B' hub nodes --db '$DB' | grep -q '\"audit_ok\": *true'"
else
  echo "SKIP erasure test: faketime not installed"
fi
exit $fail
