#!/usr/bin/env bash
# What travels down from the hub, and the stored originals, with real PostgreSQL, hub and node:
#   - site configuration: queued at the hub (CLI and admin API, checked there), signed by the
#     hub, applied by the node to DIR/config.json and audited; a tampered item is refused
#     (nothing applied, audited, the round fails) and the node resumes once it is gone;
#   - the stored original on request: a dermatologist asks in the hub API, the request goes
#     down, the node sends the original up in chunks, the hub case view serves it (the same
#     bytes as the node's photo); other photos' originals stay (policy auto, a capped link);
#   - --originals always / never, and auto on a good link (the speed measured on chunks).
# Usage: test_hub_down.sh MAKE_FIXTURES
set -u
B=${BASIRA_CLI:?}
FIX=${1:?make_fixtures}
T=$(mktemp -d)
trap 'hub_cleanup' EXIT
. "$(dirname "$0")/lib.sh"
base=${HUB_TEST_PORT_BASE:-$((26000 + (RANDOM % 90) * 10))}

mkdir -p "$T/fx" && "$FIX" "$T/fx" >/dev/null || { echo "FAIL fixtures"; exit 1; }
MODEL=$T/fx/tiny.safetensors
PHOTO=$T/fx/photo.jpg

pg_start $base
"$B" hub init --db "$DB" >/dev/null
printf 'derm-password-1\n' > "$T/dpw"
printf 'admin-password-1\n' > "$T/apw"
"$B" hub user add --db "$DB" --role dermatologist --password-file "$T/dpw" drA >/dev/null
"$B" hub user add --db "$DB" --role admin --password-file "$T/apw" admA >/dev/null
hub_start $((base + 1))
hub_login drA derm-password-1 >/dev/null
hub_login admA admin-password-1 >/dev/null
node_new n1
node_serve n1 $((base + 2))
enrol n1
check "the node learnt the hub's key at enrolment" "[ \$(psql_q 'SELECT count(*) FROM hub_keys') -eq 1 ]"
c1=$(new_case n1 D-1 true "$PHOTO")
check "a first round (originals never)" "sync_once n1 --originals never > '$T/r0.json'"
check "the photo travelled in chunks, no original" "python3 -c 'import json; r=json.load(open(\"$T/r0.json\")); assert r[\"chunks\"]>=1 and r[\"originals\"]==0, r' && [ \$(psql_q 'SELECT count(*) FROM hub_images WHERE original_sha256 IS NOT NULL') -eq 0 ] && [ \$(psql_q 'SELECT count(*) FROM hub_upload_chunks') -eq 0 ]"

# 1. Site configuration down.
printf '{"thresholds": {"high": 0.55, "medium": 0.11}}\n' > "$T/site.json"
printf '{"thresholds": {"high": "very"}}\n' > "$T/bad.json"
check "the hub refuses a site configuration the node would refuse" "! '$B' hub site-config --db '$DB' --node n1 --file '$T/bad.json' --by admA 2>/dev/null && [ \$(psql_q 'SELECT count(*) FROM hub_down') -eq 0 ]"
check "and one for an unknown node" "! '$B' hub site-config --db '$DB' --node nobody --file '$T/site.json' 2>/dev/null"
check "a site configuration queued (CLI)" "'$B' hub site-config --db '$DB' --node n1 --file '$T/site.json' --by admA | grep -q 'down item'"
printf '{"clinic": {"name": "Clinique du Nord"}}\n' > "$T/n1/config.json"
check "the node applies it" "sync_once n1 --originals never > '$T/r1.json' && python3 -c 'import json; r=json.load(open(\"$T/r1.json\")); assert r[\"down\"]==1, r'"
check "DIR/config.json has the hub's thresholds, the node's own keys kept" "python3 -c '
import json; c=json.load(open(\"$T/n1/config.json\"))
assert c[\"thresholds\"]=={\"high\":0.55,\"medium\":0.11} and c[\"clinic\"][\"name\"]==\"Clinique du Nord\", c'"
check "the change is audited at the node" "'$B' audit list --data '$T/n1' --key-file '$T/n1.key' | grep '\"site_config\"' | grep -q sha256="
check "a second round applies nothing again" "sync_once n1 --originals never | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"down\"]==0, r'"
code=$(hcurl drA -o /dev/null -w '%{http_code}' -d '{"thresholds":{"high":0.6}}' "$(HUB)/api/v1/nodes/n1/site-config")
check "a dermatologist cannot set a site configuration (403)" "[ '$code' = 403 ]"
code=$(hcurl admA -o /dev/null -w '%{http_code}' -d '{"thresholds":{"high":0.6,"medium":0.12}}' "$(HUB)/api/v1/nodes/n1/site-config")
check "an admin can, over the API (201)" "[ '$code' = 201 ]"
# Tampered on the way (here: in the hub's table): the payload no longer matches the signature.
psql_q "UPDATE hub_down SET payload = replace(payload, '\"high\":', '\"high\": ') WHERE id = (SELECT max(id) FROM hub_down)" >/dev/null
check "a node refuses an item whose signature fails (the round fails)" "! sync_once n1 --originals never >/dev/null 2>'$T/refused.err' && grep -q 'refused' '$T/refused.err'"
check "nothing of it applied" "python3 -c 'import json; c=json.load(open(\"$T/n1/config.json\")); assert c[\"thresholds\"][\"high\"]==0.55, c'"
check "the refusal is audited" "'$B' audit list --data '$T/n1' --key-file '$T/n1.key' | grep -q '\"down_refused\"'"
check "the node's chain still verifies" "'$B' audit verify --data '$T/n1' --key-file '$T/n1.key' >/dev/null"
psql_q "DELETE FROM hub_down WHERE id = (SELECT max(id) FROM hub_down)" >/dev/null
check "once the bad item is gone the node syncs again" "sync_once n1 --originals never >/dev/null"

# 2. The stored original on request (policy auto, on a link capped below a good one).
c2=$(new_case n1 D-2 true "$PHOTO")
sync_once n1 --max-kbps 1000 >/dev/null
i1=$(psql_q "SELECT image_id FROM hub_images i JOIN hub_cases c USING (node_id, case_id) WHERE c.patient_ref = 'D-1'")
code=$(hcurl drA -o /dev/null -w '%{http_code}' -d "{\"image_id\":$i1}" "$(HUB)/api/v1/cases/n1/$c1/original")
check "a dermatologist requests the original (202)" "[ '$code' = 202 ]"
code=$(hcurl drA -o /dev/null -w '%{http_code}' -d '{"image_id":999}' "$(HUB)/api/v1/cases/n1/$c1/original")
check "of a photo the hub has not: 404" "[ '$code' = 404 ]"
check "the request travels down and the original up" "sync_once n1 --max-kbps 1000 > '$T/r2.json' && python3 -c 'import json; r=json.load(open(\"$T/r2.json\")); assert r[\"originals\"]==1 and r[\"down\"]==1, r'"
hcurl drA "$(HUB)/api/v1/cases/n1/$c1" > "$T/case1.json"
osha=$(python3 -c "import json; print(json.load(open('$T/case1.json'))['images'][0]['original'] or '')")
check "the hub case view names the original" "[ -n '$osha' ] && grep -q '\"original_requested_by\": *\"drA\"' <(python3 -m json.tool '$T/case1.json')"
hcurl drA -o "$T/orig.jpg" "$(HUB)/api/v1/photos/$osha"
api n1 GET "/cases/$c1/images/$(api n1 GET "/cases/$c1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["id"])')" -o "$T/node.jpg"
check "and serves it: the node's stored photo, byte for byte" "[ -s '$T/orig.jpg' ] && cmp -s '$T/orig.jpg' '$T/node.jpg'"
check "the original of the photo nobody asked for stayed at the node" "[ \$(psql_q \"SELECT count(*) FROM hub_images i JOIN hub_cases c USING (node_id, case_id) WHERE c.patient_ref = 'D-2' AND original_sha256 IS NOT NULL\") -eq 0 ]"
code=$(hcurl drA -o /dev/null -w '%{http_code}' -d "{\"image_id\":$i1}" "$(HUB)/api/v1/cases/n1/$c1/original")
check "asking again once it is there: 409" "[ '$code' = 409 ]"
check "the request is in the node's audit trail" "'$B' audit list --data '$T/n1' --key-file '$T/n1.key' | grep -q '\"original_request\"'"

# 3. Policies: always sends every original after its copy; never sends none.
check "--originals always" "sync_once n1 --originals always | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"originals\"]==1, r'"
check "D-2's original arrived" "[ \$(psql_q \"SELECT count(*) FROM hub_images i JOIN hub_cases c USING (node_id, case_id) WHERE c.patient_ref = 'D-2' AND original_sha256 IS NOT NULL\") -eq 1 ]"
# Auto on a good link: a photo large enough for 64 KiB chunks measures the link (loopback).
PY=
for p in /usr/bin/python3 python3; do "$p" -c 'import PIL' 2>/dev/null && PY=$p && break; done
if [ -n "$PY" ]; then
  "$PY" -c "from PIL import Image; Image.open('$PHOTO').resize((2400, 1800)).save('$T/big.jpg', quality=95)"
  new_case n1 D-3 true "$T/big.jpg" >/dev/null
  check "--originals auto on a good link sends the original too" "sync_once n1 > '$T/r3.json' && python3 -c 'import json; r=json.load(open(\"$T/r3.json\")); assert r[\"originals\"]==1 and r[\"link_kbps\"]>=2000, r'"
else
  echo "SKIP auto on a good link: python3-pil missing"
fi
c4=$(new_case n1 D-4 true "$PHOTO")
check "--originals never: no original" "sync_once n1 --originals never | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"originals\"]==0, r'"
check "every change once, no upload left half done" "[ \$(psql_q 'SELECT count(*) FROM (SELECT node_id, max(seq) m, count(*) c FROM hub_changes GROUP BY node_id) x WHERE m <> c') -eq 0 ] && [ \$(psql_q 'SELECT count(*) FROM hub_upload_chunks') -eq 0 ]"
check "the node's audit chain verifies at the hub" "'$B' hub nodes --db '$DB' | grep -q '\"audit_ok\": *true'"

# 4. A node enrolled before the hub signed its down items has no hub key (made so here, behind
#    the store's back with the key file, as an insider could): it learns the key in a request
#    signed with its own key, and `basira serve --hub` applies the hub's site configuration while
#    running (no restart): the next photo is decided with the new thresholds, the next letter
#    names the new clinic, both audited.
if command -v sqlcipher >/dev/null; then
  node_new n2
  enrol n2
  k2=$(python3 -c "import hashlib; print(hashlib.blake2b(open('$T/n2.key','rb').read(), digest_size=32).hexdigest())")
  n2sql() { sqlcipher "$T/n2/basira.db" "PRAGMA key = \"x'$k2'\";" "$1" | tail -n 1; }
  n2sql "DELETE FROM sync_state WHERE key = 'hub_key'" >/dev/null
  check "n2 holds no hub key (enrolled before the hub had one)" "[ \"\$(n2sql \"SELECT count(*) FROM sync_state WHERE key = 'hub_key'\")\" = 0 ]"
  node_serve n2 $((base + 3)) --hub "$(HUB)"
  ca=$(new_case n2 L-1 true)
  api n2 POST "/cases/$ca/images" -H 'Content-Type: image/jpeg' --data-binary "@$PHOTO" > "$T/before.json"
  printf '{"thresholds": {"high": 0.77, "medium": 0.23}, "clinic": {"name": "Clinique du Sud"}}\n' > "$T/site2.json"
  "$B" hub site-config --db "$DB" --node n2 --file "$T/site2.json" --by admA >/dev/null
  new_case n2 L-2 true >/dev/null # the outbox grows: the background sync runs a round now
  for _ in $(seq 120); do
    "$B" audit list --data "$T/n2" --key-file "$T/n2.key" 2>/dev/null | grep -q '"site_config_live"' && break
    sleep 0.25
  done
  "$B" audit list --data "$T/n2" --key-file "$T/n2.key" > "$T/n2.audit"
  check "the old node learnt the hub's key, audited with it" "grep '\"sync_hub_key\"' '$T/n2.audit' | grep -q \"\$(psql_q 'SELECT public_key FROM hub_keys')\" && [ \"\$(n2sql \"SELECT value FROM sync_state WHERE key = 'hub_key'\")\" = \"\$(psql_q 'SELECT public_key FROM hub_keys')\" ]"
  check "and took the site configuration (signature checked, nothing refused)" "grep -q '\"site_config\"' '$T/n2.audit' && ! grep -q '\"down_refused\"' '$T/n2.audit' && python3 -c 'import json; c=json.load(open(\"$T/n2/config.json\")); assert c[\"thresholds\"][\"high\"]==0.77, c'"
  check "the running serve applied it, audited" "grep '\"site_config_live\"' '$T/n2.audit' | grep -q '\"ok\"'"
  cb=$(new_case n2 L-3 true)
  api n2 POST "/cases/$cb/images" -H 'Content-Type: image/jpeg' --data-binary "@$PHOTO" > "$T/after.json"
  th() { python3 -c "
import json, sys
def find(o):
    if isinstance(o, dict):
        if 'thresholds' in o and isinstance(o['thresholds'], dict): return o['thresholds']
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            r = find(v)
            if r: return r
print(json.dumps(find(json.load(open('$1'))), sort_keys=True))"; }
  check "a photo before it: the model's thresholds" "[ -n \"\$(th '$T/before.json')\" ] && ! th '$T/before.json' | grep -q 0.77"
  check "a photo after it, same serve: the hub's thresholds" "[ \"\$(th '$T/after.json')\" = '{\"high\": 0.77, \"medium\": 0.23}' ]"
  api n2 GET "/cases/$cb/report.pdf?lang=fr" -o "$T/n2.pdf"
  if command -v pdftotext >/dev/null; then
    check "the next letter names the hub's clinic" "pdftotext '$T/n2.pdf' - 2>/dev/null | grep -q 'Clinique du Sud'"
  fi
  check "the node's chain still verifies" "'$B' audit verify --data '$T/n2' --key-file '$T/n2.key' >/dev/null"
else
  echo "SKIP an old-enrolled node: sqlcipher missing"
fi
exit $fail
