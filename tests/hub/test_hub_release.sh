#!/usr/bin/env bash
# Oversight at a real hub (PostgreSQL, `basira hub`, a clinic node):
#   - `basira hub monitor --json` flags the clinic whose skin-tone mix drifted (week 2 of 4),
#     not the stable one, and writes the alert to the hub's oversight audit trail;
#   - a model release needs a certification report, the approvals of a data steward and a
#     medical lead (two people; a dermatologist cannot approve), and the release key's
#     signature before it can be staged;
#   - a node refuses an answer bigger than it holds (one request, not retried);
#   - the node installs a staged release by `sync --once --models --release-key`, refuses
#     one signed by another key or whose signature was altered (and keeps running the
#     previous model), is not sent the same refused offer again (a new signature or a new
#     staging offers it anew), installs the fixed one, and goes back on a rollback;
#   - a running `basira serve --model DIR` switches to the installed release between requests
#     (SIGHUP, or by watching DIR/current.json), audited, its results carrying the new hash;
#   - `basira hub releases --json` shows what was approved, staged, refused, and which model
#     produced the results of each clinic and when.
# Ports 18400-18499 (the node's API: 21000-21099). Usage: test_hub_release.sh MAKE_FIXTURES
set -u
B=${BASIRA_CLI:?}
FIX=${1:?make_fixtures}
SRC=${BASIRA_SOURCE_DIR:?}
T=$(mktemp -d)
trap 'hub_cleanup' EXIT
. "$(dirname "$0")/lib.sh"
base=$((18400 + (RANDOM % 45) * 2))

mkdir -p "$T/fx" && "$FIX" "$T/fx" >/dev/null || { echo "FAIL fixtures"; exit 1; }
pg_start $base
"$B" hub init --db "$DB" >/dev/null || { echo "FAIL hub init"; exit 1; }
for u in ds1:data_steward ml1:medical_lead drA:dermatologist; do
  printf '%s-password\n' "${u%%:*}" > "$T/${u%%:*}.pw"
  "$B" hub user add --db "$DB" --role "${u#*:}" --password-file "$T/${u%%:*}.pw" "${u%%:*}" >/dev/null
done
hub_start $((base + 1))

# ---- drift monitor ----
python3 "$(dirname "$0")/drift_rows.py" "$T" || { echo "FAIL drift_rows.py"; exit 1; }
"$B" hub enrol --db "$DB" c-stable >/dev/null
"$B" hub enrol --db "$DB" c-dark >/dev/null
psql_q "$(cat "$T/rows.sql")" >/dev/null
check "monitor runs" "'$B' hub monitor --db '$DB' --json --reference '$T/reference.json' > '$T/mon.jsonl'"
lvl() { python3 -c "import json,sys; d=[json.loads(l) for l in open('$T/mon.jsonl')]; c=[x for x in d if x['clinic']==sys.argv[1]][0]; print(c['alert'], c['first_alert_week'])" "$1"; }
check "the drifted clinic is at alert from its week 2" "[ \"\$(lvl c-dark)\" = 'alert 2026-01-19' ]"
check "the stable clinic is not flagged" "[ \"\$(lvl c-stable)\" = 'none None' ]"
check "the reason is the skin tone" "python3 -c \"import json; d=[json.loads(l) for l in open('$T/mon.jsonl')]; c=[x for x in d if x['clinic']=='c-dark'][0]; assert c['weeks'][2]['reasons']==['skin_tone'] and c['weeks'][0]['alert']=='none', c['weeks']\""
check "the alert is in the oversight audit trail" "[ \$(psql_q \"SELECT count(*) FROM hub_oversight_audit WHERE action = 'drift_alert' AND clinic = 'c-dark'\") -eq 1 ] && [ \$(psql_q \"SELECT count(*) FROM hub_oversight_audit WHERE clinic = 'c-stable'\") -eq 0 ]"
echo '{"format":"basira-drift-reference","version":1}' > "$T/bad.json"
check "a malformed reference is refused" "! '$B' hub monitor --db '$DB' --reference '$T/bad.json' >/dev/null 2>&1"
check "the table output" "'$B' hub monitor --db '$DB' --reference '$T/reference.json' | grep -q '^c-dark  *alert'"

# ---- recalibration on a clinic's adjudicated photos (the same photo stands for each) ----
PH=$T/fx/photo.jpg
psql_q "INSERT INTO hub_photos VALUES('$(sha256sum "$PH" | cut -d' ' -f1)', 'image/jpeg', $(stat -c %s "$PH"), decode('$(base64 -w0 "$PH")', 'base64'))"
psql_q "UPDATE hub_images SET photo_sha256 = '$(sha256sum "$PH" | cut -d' ' -f1)' WHERE node_id = (SELECT id FROM hub_nodes WHERE name = 'c-dark')"
psql_q "INSERT INTO hub_replies(node_id, case_id, diagnosis, plan, author) SELECT node_id, case_id, CASE WHEN case_id % 3 = 0 THEN 'mel' WHEN case_id % 3 = 1 THEN 'nv' ELSE 'not a class' END, 'follow_up', 'drA' FROM hub_cases WHERE node_id = (SELECT id FROM hub_nodes WHERE name = 'c-dark')"
check "recalibrate refuses too few adjudicated photos" "! '$B' recalibrate --db '$DB' --clinic c-dark --model '$T/fx/tiny.safetensors' --out '$T/cand.safetensors' > '$T/recal0.out' 2>&1 && grep -q '32 adjudicated' '$T/recal0.out' && [ ! -e '$T/cand.safetensors' ]"
check "recalibrate on the 32 adjudicated photos writes a candidate" "'$B' recalibrate --db '$DB' --clinic c-dark --model '$T/fx/tiny.safetensors' --out '$T/cand.safetensors' --min-cases 30 --json '$T/recal.json' > '$T/recal.out' 2>&1 && [ -s '$T/cand.safetensors' ] && python3 -c \"import json; d=json.load(open('$T/recal.json')); assert d['validation']['images'] == 32, d['validation']; assert isinstance(d['malignant_bias'], float) and 'bias' in d['method'], d\""
check "and leaves no photo behind" "! ls -d \${TMPDIR:-/tmp}/basira-recal-* >/dev/null 2>&1"

# ---- releases ----
node_new n1
enrol n1
"$B" hub release-key --out "$T/rk" > "$T/rk.out" && PK=$(tail -1 "$T/rk.out")
"$B" hub release-key --out "$T/rk2" > "$T/rk2.out" && PK2=$(tail -1 "$T/rk2.out")
check "release key is 0600 and its public key 64 hex" "[ \$(stat -c %a '$T/rk') = 600 ] && [[ '$PK' =~ ^[0-9a-f]{64}$ ]]"
echo "certification report of r1" > "$T/cert1.pdf"
M1=$T/fx/tiny.safetensors
# r2: the bundled clinical model, an ensemble of 11 MB: its offer (base64) is larger than
# the 8 MB that other answers of the hub may hold.
M2=$SRC/models/basira-clinical.safetensors
R() { "$B" hub release "$@" --db "$DB"; }
check "a release needs its certification report" "! R create --id r1 --model '$M1' --by ds1 >/dev/null 2>&1"
check "create r1" "R create --id r1 --model '$M1' --certify-report '$T/cert1.pdf' --by ds1 >/dev/null"
check "an existing id is refused" "! R create --id r1 --model '$M1' --certify-report '$T/cert1.pdf' --by ds1 >/dev/null 2>&1"
check "no signature without approvals" "! R sign --id r1 --key-file '$T/rk' --by ds1 >/dev/null 2>&1"
check "a dermatologist cannot approve" "! R approve --id r1 --by drA --password-file '$T/drA.pw' >/dev/null 2>&1"
check "a wrong password cannot approve" "! R approve --id r1 --by ds1 --password-file '$T/ml1.pw' >/dev/null 2>&1"
check "the data steward approves" "R approve --id r1 --by ds1 --password-file '$T/ds1.pw' >/dev/null"
check "one approval is not enough" "! R sign --id r1 --key-file '$T/rk' --by ds1 >/dev/null 2>&1"
check "not staged before it is signed" "! R stage --id r1 --clinic n1 --by ds1 >/dev/null 2>&1"
check "the medical lead approves" "R approve --id r1 --by ml1 --password-file '$T/ml1.pw' >/dev/null"
check "signed" "R sign --id r1 --key-file '$T/rk' --by ds1 >/dev/null"
check "staged for n1" "R stage --id r1 --clinic n1 --by ml1 >/dev/null"
check "no staging for an unknown clinic" "! R stage --id r1 --clinic nowhere --by ml1 >/dev/null 2>&1"
SYNC() { "$B" sync --data "$T/n1" --key-file "$T/n1.key" --hub "$(HUB)" --once --models "$T/n1m" --release-key "$1"; }
check "the node installs r1" "SYNC '$PK' > '$T/sy1.out' && grep -q '\"installed\": *true' '$T/sy1.out'"
SHA1=$(sha256sum "$M1" | cut -d' ' -f1)
SHA2=$(sha256sum "$M2" | cut -d' ' -f1)
running() { python3 -c "import json; print(json.load(open('$T/n1m/current.json'))['history'][-1]['sha256'])"; }
check "r1 runs at the node" "[ \"\$(running)\" = '$SHA1' ]"
# ---- a running node (basira serve --model DIR) takes up new releases without a restart ----
MODEL=$T/n1m node_serve n1 $((21000 + (RANDOM % 50) * 2))
# upsha: the model hash recorded in the result of a new photo at the running node
upsha() { local id; id=$(new_case n1 "P$RANDOM" false) && api n1 POST "/cases/$id/images" -H 'Content-Type: image/jpeg' --data-binary "@$PH" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model"]["sha256"])'; }
# switched N: wait (at most 20 s) until the node has logged its N-th model switch
switched() { for _ in $(seq 100); do [ "$(grep -c '"model_switch"' "$T/n1.serve.err")" -ge "$1" ] && return 0; sleep 0.2; done; return 1; }
check "the running node analyses with r1" "[ \"\$(upsha)\" = '$SHA1' ]"
check "a second sync offers nothing" "SYNC '$PK' | grep -q '\"offered\": *false'"

echo "certification report of r2" > "$T/cert2.pdf"
R create --id r2 --model "$M2" --certify-report "$T/cert2.pdf" --by ds1 >/dev/null
R approve --id r2 --by ds1 --password-file "$T/ds1.pw" >/dev/null
R approve --id r2 --by ml1 --password-file "$T/ml1.pw" >/dev/null
R sign --id r2 --key-file "$T/rk" --by ds1 >/dev/null
R stage --id r2 --clinic n1 --by ml1 >/dev/null
check "a node with another release key refuses r2" "! SYNC '$PK2' > '$T/sy2.out' 2>'$T/sy2.err' && grep -q '\"refused\": *true' '$T/sy2.out' && grep -q 'signature' '$T/sy2.err'"
check "and keeps running r1" "[ \"\$(running)\" = '$SHA1' ]"
check "the refused offer is not sent (downloaded) again at the next round" "SYNC '$PK2' > '$T/sy2b.out' 2>&1 && grep -q '\"offered\": *false' '$T/sy2b.out' && [ \"\$(running)\" = '$SHA1' ]"
check "staging r2 again offers it anew" "R stage --id r2 --clinic n1 --by ml1 >/dev/null"
GOOD=$(psql_q "SELECT signature FROM hub_releases WHERE id = 'r2'")
BAD=$(python3 -c "s='$GOOD'; print(s[:10] + ('0' if s[10] != '0' else '1') + s[11:])")
psql_q "UPDATE hub_releases SET signature = '$BAD' WHERE id = 'r2'"
check "an altered signature is refused" "! SYNC '$PK' > /dev/null 2>'$T/sy3.err' && grep -q 'signature' '$T/sy3.err'"
check "and r1 still runs" "[ \"\$(running)\" = '$SHA1' ]"
check "and the running node still analyses with r1" "kill -HUP \$NODE_PID_n1 && sleep 0.5 && [ \"\$(upsha)\" = '$SHA1' ] && ! grep -q '\"model_switch\"' '$T/n1.serve.err'"
check "the same altered offer is not downloaded again" "SYNC '$PK' > '$T/sy3b.out' 2>&1 && grep -q '\"offered\": *false' '$T/sy3b.out' && [ \"\$(running)\" = '$SHA1' ]"
psql_q "UPDATE hub_releases SET signature = '$GOOD' WHERE id = 'r2'"
check "the correctly signed r2 is installed" "SYNC '$PK' | grep -q '\"installed\": *true' && [ \"\$(running)\" = '$SHA2' ]"
check "SIGHUP: the running node switches to r2 between requests" "kill -HUP \$NODE_PID_n1 && switched 1 && [ \"\$(upsha)\" = '$SHA2' ] && kill -0 \$NODE_PID_n1"
check "the hub rolls n1 back" "R rollback --clinic n1 --by ml1 >/dev/null"
check "the node goes back to r1" "SYNC '$PK' >/dev/null && [ \"\$(running)\" = '$SHA1' ]"
check "without a signal the running node sees the rollback (current.json watched)" "switched 2 && [ \"\$(upsha)\" = '$SHA1' ]"
check "each switch is in the node's audit trail" "'$B' audit list --data '$T/n1' --key-file '$T/n1.key' > '$T/audit2.out' 2>&1 && [ \$(grep -c model_switch '$T/audit2.out') -eq 2 ]"
check "installs and refusals are in the node's audit trail" "'$B' audit list --data '$T/n1' --key-file '$T/n1.key' > '$T/audit.out' 2>&1 && [ \$(grep -c release_refused '$T/audit.out') -eq 2 ] && [ \$(grep -c release_install '$T/audit.out') -eq 3 ]"
check "releases --json" "'$B' hub releases --db '$DB' --json > '$T/rel.json'"
check "the registry: approvals, stages, refusals, what ran where" "python3 - '$T/rel.json' <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = {x['id']: x for x in d['releases']}
assert sorted(a['role'] for a in r['r1']['approvals']) == ['data_steward', 'medical_lead']
assert [s['action'] for s in r['r1']['stages']] == ['stage', 'rollback']
outs = [x['outcome'] for x in d['reports'] if x['clinic'] == 'n1']
assert outs == ['installed', 'refused', 'refused', 'installed', 'installed'], outs
assert any(x['clinic'] == 'c-dark' and x['results'] == 48 and x['first'] == 1767571200 for x in d['ran'])
PY"
check "every step is in the hub's oversight audit trail" "[ \$(psql_q \"SELECT count(*) FROM hub_oversight_audit WHERE action LIKE 'release_%'\") -eq 12 ]"
# A release file changed on disk under the running node: refused at the next look, the
# model in memory keeps running, the failure audited once.
printf 'x' >> "$T/n1m/releases/$SHA1.safetensors"
check "a changed release file: the running node keeps its model and audits the failure" "kill -HUP \$NODE_PID_n1 && for _ in \$(seq 100); do grep -q 'does not load' '$T/n1.serve.err' && break; sleep 0.2; done && [ \"\$(upsha)\" = '$SHA1' ] && '$B' audit list --data '$T/n1' --key-file '$T/n1.key' > '$T/audit3.out' 2>&1 && [ \$(grep model_switch '$T/audit3.out' | grep -c failed) -eq 1 ]"
# A hub whose answer is bigger than a node holds (9 MB to a request that is not a release
# offer): one clear refusal, not retried as if the link had been cut.
FPORT=$((22000 + (RANDOM % 50) * 2))
python3 - "$FPORT" "$T/fake.count" <<'PY' & FAKE_PID=$!
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "a") as f:
            f.write(self.path + "\n")
        body = b'{"pad": "' + b"a" * (9 << 20) + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$FPORT) 2>/dev/null && break; sleep 0.1; done
"$B" sync --data "$T/n1" --key-file "$T/n1.key" --hub "http://127.0.0.1:$FPORT" --once \
  --models "$T/n1m" --release-key "$PK" >/dev/null 2>"$T/big.err"; rc=$?
kill $FAKE_PID 2>/dev/null
check "an answer over 8 MB is refused once, by name" "[ $rc -ne 0 ] && grep -q 'larger than 8 MB' '$T/big.err' && [ \$(wc -l < '$T/fake.count') -eq 1 ]"
exit $fail
