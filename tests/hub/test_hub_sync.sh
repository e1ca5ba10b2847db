#!/usr/bin/env bash
# Two clinic nodes and one regional hub on a private PostgreSQL, all real:
#   - consented cases (photos, AI results, decisions, consent) reach the hub after one
#     `sync --once` each; an unconsented case never leaves; each node's audit chain verifies;
#   - a dermatologist's reply (CLI and HTTP API) appears in the node's GET /cases/{id};
#   - a second round is idempotent; duplicated/replayed and forged batches change nothing;
#   - kill -9 of the hub mid-round, then `sync --once` again: nothing lost or duplicated;
#     the same for kill -9 of the node's sync mid-round; HTTPS with a private CA;
#   - PostgreSQL restarted under a running hub: the next round succeeds;
#   - a newer hub schema is refused.
# Usage: test_hub_sync.sh MAKE_FIXTURES
set -u
B=${BASIRA_CLI:?}
FIX=${1:?make_fixtures}
T=$(mktemp -d)
trap 'hub_cleanup' EXIT
. "$(dirname "$0")/lib.sh"
base=${HUB_TEST_PORT_BASE:-$((25000 + (RANDOM % 90) * 10))}

mkdir -p "$T/fx" && "$FIX" "$T/fx" >/dev/null || { echo "FAIL fixtures"; exit 1; }
MODEL=$T/fx/tiny.safetensors
PHOTO=$T/fx/photo.jpg

pg_start $base
check "hub init creates the schema" "'$B' hub init --db '$DB' | grep -Eq 'version [1-9]'"
check "hub init again is a no-op" "'$B' hub init --db '$DB' >/dev/null"
printf 'derm-password-1\n' > "$T/dpw"
check "hub user add" "'$B' hub user add --db '$DB' --role dermatologist --password-file '$T/dpw' drA >/dev/null"
printf 'audit-password-1\n' > "$T/apw"
"$B" hub user add --db "$DB" --role auditor --password-file "$T/apw" audA >/dev/null
check "duplicate user refused" "! '$B' hub user add --db '$DB' --role admin --password-file '$T/dpw' drA 2>/dev/null"
hub_start $((base + 1))
hub_login drA derm-password-1 >/dev/null
hub_login audA audit-password-1 >/dev/null

for n in n1 n2; do node_new $n; done
node_serve n1 $((base + 2))
node_serve n2 $((base + 3))
check "sync before enrolment is refused" "! sync_once n1 >/dev/null 2>&1"
enrol n1
enrol n2
tok=$("$B" hub enrol --db "$DB" n3 | tail -1)
check "enrolment token is 64 hex" "[[ '$tok' =~ ^[0-9a-f]{64}$ ]]"
check "an already enrolled node cannot be re-armed" "! '$B' hub enrol --db '$DB' n1 >/dev/null 2>&1"
check "a token is spent once" "! '$B' sync --data '$T/n1' --key-file '$T/n1.key' --hub '$(HUB)' --enrol 0000000000000000000000000000000000000000000000000000000000000000 >/dev/null 2>&1"

# Two consented cases with a photo on each node, one unconsented.
declare -A CASES
for n in n1 n2; do
  CASES[$n.a]=$(new_case $n "$n-PA" true "$PHOTO")
  CASES[$n.b]=$(new_case $n "$n-PB" true "$PHOTO")
  CASES[$n.x]=$(new_case $n "$n-SECRET" false "$PHOTO")
done
# Two versions of a decision on n1's first case.
api n1 POST "/cases/${CASES[n1.a]}/decision" -H 'Content-Type: application/json' -d '{"accept_ai":false,"category":"high","reason":"irregular border","referral":"requested"}' >/dev/null
api n1 POST "/cases/${CASES[n1.a]}/decision" -H 'Content-Type: application/json' -d '{"accept_ai":false,"category":"medium","reason":"second look","referral":"requested"}' >/dev/null

check "n1 sync --once" "sync_once n1 > '$T/s1.json'"
check "n2 sync --once" "sync_once n2 > '$T/s2.json'"
"$B" hub cases --db "$DB" --json > "$T/cases.jsonl"
check "4 consented cases at the hub" "[ \$(wc -l < '$T/cases.jsonl') -eq 4 ]"
check "both nodes' cases are there" "[ \$(grep -c '\"node\": *\"n1\"' '$T/cases.jsonl') -eq 2 ] && [ \$(grep -c '\"node\": *\"n2\"' '$T/cases.jsonl') -eq 2 ]"
check "the unconsented cases never left" "! grep -q SECRET '$T/cases.jsonl' && [ \$(psql_q \"SELECT count(*) FROM hub_cases WHERE patient_ref LIKE '%SECRET%'\") -eq 0 ]"
check "fields: node, case_id, patient_ref, category" "python3 -c '
import json,sys
rows=[json.loads(l) for l in open(\"$T/cases.jsonl\")]
assert all(k in r for r in rows for k in (\"node\",\"case_id\",\"patient_ref\",\"category\",\"reply\"))
r=[r for r in rows if r[\"node\"]==\"n1\" and r[\"case_id\"]==${CASES[n1.a]}][0]
assert r[\"category\"]==\"medium\" and r[\"decisions\"]==2 and r[\"photos\"]==1, r
assert r[\"consent\"][\"remote_review\"] is True
'"
check "photos arrived budgeted (JPEG, <= 1024 px)" "[ \$(psql_q \"SELECT count(*) FROM hub_photos WHERE mime = 'image/jpeg'\") -ge 1 ]"
check "AI results arrived" "[ \$(psql_q \"SELECT count(*) FROM hub_images WHERE result->'risk' ? 'index' AND photo_sha256 IS NOT NULL\") -eq 4 ] && [ \$(psql_q \"SELECT count(*) FROM hub_cases WHERE ai_category IS NULL\") -eq 0 ]"
check "each node's audit chain verified at the hub" "'$B' hub nodes --db '$DB' | python3 -c '
import json,sys
rows={r[\"node\"]:r for r in map(json.loads,sys.stdin)}
assert rows[\"n1\"][\"audit_ok\"] and rows[\"n2\"][\"audit_ok\"], rows
assert rows[\"n1\"][\"audit_entries\"]>5
'"

# A reply from the CLI and one through the hub's HTTP API.
"$B" hub reply --db "$DB" --node n1 --case "${CASES[n1.a]}" --plan biopsy --diagnosis "suspected melanoma" --message "Please refer for excision biopsy within 2 weeks." --by drA >/dev/null
code=$(hcurl drA -o "$T/r.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"plan":"reassure","diagnosis":"seborrhoeic keratosis","message":"Benign."}' "$(HUB)/api/v1/cases/n2/${CASES[n2.b]}/reply")
check "reply over the hub API (201)" "[ '$code' = 201 ]"
code=$(hcurl audA -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"plan":"reassure"}' "$(HUB)/api/v1/cases/n2/${CASES[n2.b]}/reply")
check "an auditor cannot reply (403)" "[ '$code' = 403 ]"
check "an error in the asker's language (fr)" "hcurl drA -H 'Accept-Language: fr-FR,fr;q=0.9' -H 'Content-Type: application/json' -d '{\"plan\":\"x\"}' '$(HUB)/api/v1/cases/n2/${CASES[n2.b]}/reply' | grep -q 'le plan doit'"
check "and in Arabic for the next asker" "hcurl drA -H 'Accept-Language: ar' '$(HUB)/api/v1/cases/n2/999999' | grep -q 'لا توجد حالة'"
check "wrong password (401)" "[ \$(hub_login drX wrong-password) = 401 ]"
check "worklist over the API" "hcurl drA '$(HUB)/api/v1/cases' | python3 -c 'import json,sys; assert len(json.load(sys.stdin)[\"items\"])==4'"
check "n1 pulls the reply" "sync_once n1 | grep -q '\"replies\": *1'"
sync_once n2 >/dev/null
check "the reply is in n1's GET /cases/{id}" "api n1 GET '/cases/${CASES[n1.a]}' | python3 -c '
import json,sys
c=json.load(sys.stdin); r=c[\"replies\"]
assert len(r)==1 and r[0][\"plan\"]==\"biopsy\" and r[0][\"author\"]==\"drA\" and \"excision\" in r[0][\"message\"], c
'"
check "the API reply is in n2's case" "api n2 GET '/cases/${CASES[n2.b]}' | grep -q seborrhoeic"
check "hub cases shows the latest reply" "'$B' hub cases --db '$DB' --json | grep '\"case_id\": *${CASES[n1.a]},' | grep '\"n1\"' | grep -q biopsy"

check "hub indicators --json: every indicator with its name, proportions with an interval" "'$B' hub indicators --db '$DB' --json --by clinic | python3 -c '
import json, sys
d = json.load(sys.stdin)
ids = [x[\"id\"] for x in d[\"definitions\"]]
assert len(ids) == 12 and [x[\"key\"] for x in d[\"groups\"]] == [\"all\", \"n1\", \"n2\"], d
for g in d[\"groups\"]:
    assert [i[\"id\"] for i in g[\"indicators\"]] == ids and all(i[\"name\"] for i in g[\"indicators\"])
    for i in g[\"indicators\"]:
        assert i[\"unit\"] != \"proportion\" or i[\"interval\"][\"method\"] == \"wilson\", i
v = {i[\"id\"]: i for i in d[\"groups\"][0][\"indicators\"]}
assert d[\"groups\"][0][\"cases\"] == 4 and v[\"days_to_reply\"][\"n\"] == 2, v
assert v[\"days_to_referral\"][\"n\"] == 1 and v[\"cases_per_gp_week\"][\"n\"] == 1
'"

# Idempotence: another round applies nothing new and pulls nothing twice.
check "second round: nothing to push, no reply twice" "sync_once n1 | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"pushed\"]==0 and r[\"replies\"]==0, r'"
check "reply applied once at the node" "[ \$(api n1 GET '/cases/${CASES[n1.a]}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"replies\"]))') -eq 1 ]"

# Replayed, reordered and forged deliveries straight to the hub.
python3 - "$T" "$(HUB)" <<'PY' > "$T/replay.out" 2>&1
import json, sys, urllib.request, urllib.error
T, hub = sys.argv[1], sys.argv[2]
def post(body, sig="00"*64, node="n1"):
    req = urllib.request.Request(hub + "/sync/v1/push", data=body, headers={
        "Content-Type": "application/json", "X-Basira-Node": node, "X-Basira-Signature": sig})
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code
forged = json.dumps({"node": "n1", "changes": [{"seq": 999, "kind": "erase", "case_id": 1}], "audit": []}).encode()
print("forged", post(forged))
print("unknown-node", post(forged.replace(b'"n1"', b'"nobody"'), node="nobody"))
print("malformed", post(json.dumps({"node": "n1", "changes": [{"seq": "x"}], "audit": []}).encode()))
import zlib
def post_z(body):
    req = urllib.request.Request(hub + "/sync/v1/push", data=body, headers={
        "Content-Type": "application/json", "Content-Encoding": "deflate", "X-Basira-Node": "n1",
        "X-Basira-Signature": "00" * 64})
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code
print("bomb", post_z(zlib.compress(b"[" * (80 << 20), 9)))
print("damaged", post_z(b"not deflate at all"))
PY
check "a forged batch is refused (401)" "grep -q 'forged 401' '$T/replay.out' && grep -q 'unknown-node 401' '$T/replay.out' || { cat '$T/replay.out'; false; }"
check "a malformed batch is refused (400), a compression bomb stops at the cap (413), damaged data (400)" "grep -q 'malformed 400' '$T/replay.out' && grep -q 'bomb 413' '$T/replay.out' && grep -q 'damaged 400' '$T/replay.out' || { cat '$T/replay.out'; false; }"
check "the hub still answers" "curl -sf '$(HUB)/health' >/dev/null"
check "nothing was erased by it" "[ \$('$B' hub cases --db '$DB' --json | wc -l) -eq 4 ]"
# Reordered and duplicated deliveries, at the protocol level: a node whose Ed25519 key is made
# and used by openssl (independent of our libsodium code) sends batches out of order and twice.
if command -v openssl >/dev/null && openssl genpkey -algorithm ed25519 -out "$T/rogue.pem" 2>/dev/null; then
  rtok=$("$B" hub enrol --db "$DB" rogue | tail -1)
  python3 - "$T" "$(HUB)" "$rtok" <<'PY' > "$T/reorder.out" 2>&1
import json, subprocess, sys, urllib.request, urllib.error
T, hub, tok = sys.argv[1:4]
pk = subprocess.run(["openssl", "pkey", "-in", T + "/rogue.pem", "-pubout", "-outform", "DER"],
                    stdout=subprocess.PIPE, check=True).stdout[-32:].hex()
def post(path, obj, sign=True):
    body = json.dumps(obj).encode()
    h = {"Content-Type": "application/json"}
    if sign:
        open(T + "/msg", "wb").write(body)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", T + "/rogue.pem", "-rawin",
                              "-in", T + "/msg"], stdout=subprocess.PIPE, check=True).stdout.hex()
        h.update({"X-Basira-Node": "rogue", "X-Basira-Signature": sig})
    try:
        r = urllib.request.urlopen(urllib.request.Request(hub + path, data=body, headers=h))
        return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return {"status": e.code}
print("enrol", post("/sync/v1/enrol", {"token": tok, "public_key": pk}, sign=False))
rec = lambda ref: {"patient_ref": ref, "age": 40, "sex": "female", "consent": {"care": True, "remote_review": True}}
c1 = {"seq": 1, "kind": "case", "case_id": 1, "record": rec("R-1")}
c2 = {"seq": 2, "kind": "case", "case_id": 2, "record": rec("R-2")}
d3 = {"seq": 3, "kind": "decision", "case_id": 1, "record": {"category": "high", "outcome": "overridden"}}
g5 = {"seq": 5, "kind": "case", "case_id": 5, "record": rec("R-5")}
batch = lambda *ch: {"node": "rogue", "changes": list(ch), "audit": []}
def show(name, a):
    print(name, a.get("acked_seq"), a.get("applied"), a.get("duplicates"))
show("early", post("/sync/v1/push", batch(c2)))
show("inorder", post("/sync/v1/push", batch(c1, c2, d3)))
show("again", post("/sync/v1/push", batch(c1, c2, d3)))
show("gap", post("/sync/v1/push", batch(d3, g5)))
PY
  check "enrolled with an openssl-made key" "grep -q \"enrol {'node': 'rogue'\" '$T/reorder.out' || { cat '$T/reorder.out'; false; }"
  check "a batch arriving before its predecessor applies nothing" "grep -q '^early 0 0 0' '$T/reorder.out'"
  check "in order: all applied" "grep -q '^inorder 3 3 0' '$T/reorder.out'"
  check "the same batch again: all duplicates" "grep -q '^again 3 0 3' '$T/reorder.out'"
  check "a gap stops the apply at the acknowledged sequence" "grep -q '^gap 3 0 1' '$T/reorder.out'"
  check "at the hub: 2 cases and 1 decision of that node, once" "[ \$(psql_q \"SELECT count(*) FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id WHERE n.name = 'rogue'\") -eq 2 ] && [ \$(psql_q \"SELECT count(*) FROM hub_decisions d JOIN hub_nodes n ON n.id = d.node_id WHERE n.name = 'rogue'\") -eq 1 ]"
  psql_q "DELETE FROM hub_cases WHERE node_id = (SELECT id FROM hub_nodes WHERE name = 'rogue')" >/dev/null
fi

# Duplicated delivery: forget the acknowledgement at the node; the hub skips what it has.
n_before=$(psql_q "SELECT count(*) FROM hub_changes")
check "a full resend is all duplicates" "'$B' sync --data '$T/n2' --key-file '$T/n2.key' --hub '$(HUB)' --once --resend | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"pushed\"]==0 and r[\"duplicates\"]>=4, r'"
check "changes at the hub = outbox entries, once each" "[ \$(psql_q 'SELECT count(*) FROM hub_changes') -eq $n_before ] && [ \$(psql_q 'SELECT count(*) FROM (SELECT node_id, max(seq) m, count(*) c FROM hub_changes GROUP BY node_id) x WHERE m <> c') -eq 0 ]"

# kill -9 of the hub in the middle of a round.
# Twelve different photos: a photo the hub already holds is not sent again, which would
# make the round too short to be cut.
"$(command -v /usr/bin/python3 || command -v python3)" - "$PHOTO" "$T/k" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
for i in range(1, 13):
    # a slightly brighter copy each: other pixels, other hash, same kind of photo
    im.point(lambda v, i=i: min(255, v + i)).save(f"{sys.argv[2]}{i}.jpg", quality=95)
PY
for i in $(seq 1 12); do new_case n1 "n1-K$i" true "$T/k$i.jpg" >/dev/null; done
sync_once n1 --max-kbps 40 > "$T/killed.json" 2>"$T/killed.err" &
spid=$!
sleep 1.5
kill -9 "$HUB_PID"
wait "$spid"; src=$?
check "the round with the hub killed fails (exit 1)" "[ $src -eq 1 ]"
partial=$(psql_q "SELECT count(*) FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id WHERE n.name = 'n1'")
echo "     (hub had $partial of n1's 14 cases when killed)"
hub_start $((base + 4))
check "sync --once again succeeds" "sync_once n1 > '$T/after.json'"
check "all 14 of n1's consented cases at the hub, once each" "[ \$(psql_q \"SELECT count(*) FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id WHERE n.name = 'n1'\") -eq 14 ]"
check "no change applied twice, none missing" "[ \$(psql_q 'SELECT count(*) FROM (SELECT node_id, max(seq) m, count(*) c FROM hub_changes GROUP BY node_id) x WHERE m <> c') -eq 0 ] && [ \$(psql_q \"SELECT count(*) FROM hub_images i JOIN hub_nodes n ON n.id=i.node_id WHERE n.name='n1'\") -eq 14 ]"
check "audit chains still verify" "'$B' hub nodes --db '$DB' | python3 -c 'import json,sys; assert all(json.loads(l)[\"audit_ok\"] for l in sys.stdin)'"
check "the node's own chain verifies" "'$B' audit verify --data '$T/n1' --key-file '$T/n1.key' >/dev/null"

# kill -9 of the node's sync in the middle of a round.
for i in $(seq 1 8); do new_case n2 "n2-K$i" true "$PHOTO" >/dev/null; done
sync_once n2 --max-kbps 40 >/dev/null 2>&1 &
spid=$!
sleep 1.2
kill -9 "$spid"; wait "$spid" 2>/dev/null
check "sync --once after the node was killed mid-round" "sync_once n2 >/dev/null"
check "all of n2's cases at the hub, every change once" "[ \$(psql_q \"SELECT count(*) FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id WHERE n.name = 'n2' AND c.patient_ref LIKE 'n2-K%'\") -eq 8 ] && [ \$(psql_q 'SELECT count(*) FROM (SELECT node_id, max(seq) m, count(*) c FROM hub_changes GROUP BY node_id) x WHERE m <> c') -eq 0 ]"
check "n2's store and chain are intact" "'$B' audit verify --data '$T/n2' --key-file '$T/n2.key' >/dev/null"

# PostgreSQL restarted under the running hub.
pg_stop
pg_ctl_start
new_case n2 n2-AFTER-RESTART true "$PHOTO" >/dev/null
check "round after a PostgreSQL restart" "sync_once n2 >/dev/null || sync_once n2 >/dev/null"
check "the case made it" "'$B' hub cases --db '$DB' --json | grep -q n2-AFTER-RESTART"

# HTTPS: the hub with a certificate, the node trusting it with --ca-file.
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
  tport=$((base + 5))
  "$B" hub --db "$DB" --listen 127.0.0.1:$tport --tls-cert "$T/tls.crt" --tls-key "$T/tls.key" 2>>"$T/hub.err" &
  PIDS+=("$!")
  for _ in $(seq 100); do curl -sf --cacert "$T/tls.crt" "https://127.0.0.1:$tport/health" >/dev/null && break; sleep 0.1; done
  new_case n1 n1-TLS true "$PHOTO" >/dev/null
  check "a node refuses a hub certificate it does not trust" "! '$B' sync --data '$T/n1' --key-file '$T/n1.key' --hub https://127.0.0.1:$tport --once >/dev/null 2>&1"
  check "sync over HTTPS with --ca-file" "'$B' sync --data '$T/n1' --key-file '$T/n1.key' --hub https://127.0.0.1:$tport --ca-file '$T/tls.crt' --once >/dev/null"
  check "the case arrived over HTTPS" "'$B' hub cases --db '$DB' --json | grep -q n1-TLS"
fi

# A newer schema is refused by this program.
psql_q "INSERT INTO hub_schema(version) VALUES(99)"
check "newer hub schema refused by init" "! '$B' hub init --db '$DB' >/dev/null 2>&1"
check "newer hub schema refused by serve" "! timeout 5 '$B' hub --db '$DB' --listen 127.0.0.1:0 2>/dev/null"
exit $fail
