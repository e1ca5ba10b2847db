#!/usr/bin/env bash
# The programme's indicators (docs/indicators.md) on a known synthetic dataset: two clinics'
# cases, decisions and AI results arrive through the hub's own signed push (a node whose
# Ed25519 key is made by openssl), replies and histology through `basira hub reply` / `outcome`,
# a dermatologist's opening of a case through the HTTP API. Reply and opening times are then set
# by SQL so that every figure below is computed by hand (see the comments).
# Usage: test_hub_indicators.sh
set -u
B=${BASIRA_CLI:?}
T=$(mktemp -d)
trap 'hub_cleanup' EXIT
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null && openssl genpkey -algorithm ed25519 -out "$T/k.pem" 2>/dev/null ||
  { echo "SKIP: openssl with Ed25519 missing"; exit 77; }
base=$((18300 + (RANDOM % 9) * 10))

pg_start $base
"$B" hub init --db "$DB" >/dev/null || { echo "FAIL hub init"; exit 1; }
printf 'derm-password-1\n' > "$T/pw"
for u in drA drB; do "$B" hub user add --db "$DB" --role dermatologist --password-file "$T/pw" $u >/dev/null; done
"$B" hub user add --db "$DB" --role auditor --password-file "$T/pw" audA >/dev/null
hub_start $((base + 1))
for u in drA drB audA; do hub_login $u derm-password-1 >/dev/null; done
for n in c1 c2; do "$B" hub enrol --db "$DB" $n | tail -1 > "$T/$n.tok"; done

# The dataset. Case: (node, id, patient, visit, sex, age, tone, AI category, decision).
python3 - "$T" "$(HUB)" <<'PY' > "$T/push.out" 2>&1 || { cat "$T/push.out"; echo "FAIL push"; exit 1; }
import base64, hashlib, json, subprocess, sys, urllib.request
T, hub = sys.argv[1:3]
pk = subprocess.run(["openssl", "pkey", "-in", T + "/k.pem", "-pubout", "-outform", "DER"],
                    stdout=subprocess.PIPE, check=True).stdout[-32:].hex()
def post(path, obj, node=None):
    body = json.dumps(obj).encode()
    h = {"Content-Type": "application/json"}
    if node:
        open(T + "/msg", "wb").write(body)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", T + "/k.pem", "-rawin",
                              "-in", T + "/msg"], stdout=subprocess.PIPE, check=True).stdout.hex()
        h.update({"X-Basira-Node": node, "X-Basira-Signature": sig})
    return json.loads(urllib.request.urlopen(urllib.request.Request(hub + path, data=body, headers=h)).read())
D = lambda day, hh="09:00:00": "2026-11-%02dT%sZ" % (day, hh)
# id: (patient, visit day, sex, age, tone, ai, decision (by, category, referral day/time or None, follow-up due))
cases = {
  "c1": {1: ("P1", 2, "female", 45, "light", "high", ("gp1", "high", D(2, "10:00:00"), None)),
         2: ("P2", 3, "male", 70, "brown", "medium", ("gp1", "high", D(4), None)),
         3: ("P3", 4, "female", 30, "tan", "medium", ("gp2", "medium", None, D(20, "00:00:00"))),
         4: ("P4", 5, "male", 62, "light", "low", ("gp2", "low", None, None)),
         5: ("P3", 25, "female", 30, "tan", "medium", ("gp1", "medium", None, "2026-12-01T00:00:00Z")),
         6: ("P6", 6, "female", 50, "dark", "high", ("gp1", "medium", D(8), None))},
  "c2": {7: ("Q7", 10, "male", 40, "light", "high", ("gpA", "high", D(13), None)),
         8: ("Q8", 11, "female", 85, "very_light", "low", None)},
}
for node, cs in cases.items():
    print("enrol", post("/sync/v1/enrol", {"token": open(T + "/%s.tok" % node).read().strip(), "public_key": pk}))
    ch, seq = [], 0
    for cid, (ref, day, sex, age, tone, ai, dec) in cs.items():
        seq += 1
        ch.append({"seq": seq, "kind": "case", "case_id": cid, "record": {
            "patient_ref": ref, "age": age, "sex": sex, "body_site": "back", "created_at": D(day),
            "consent": {"care": True, "remote_review": True}}})
        photo = ("photo %s %d" % (node, cid)).encode()
        seq += 1
        ch.append({"seq": seq, "kind": "image", "case_id": cid, "image_id": cid, "record": {
            "kind": "photo", "created_at": 1, "result": {"risk": {"index": 50, "category": ai},
                                                          "skin_tone": {"ita": 0, "category": tone}}},
            "photo": {"mime": "image/jpeg", "sha256": hashlib.sha256(photo).hexdigest(),
                      "data": base64.b64encode(photo).decode(), "original_bytes": len(photo)}})
        if dec:
            by, cat, ref_at, fu = dec
            seq += 1
            ch.append({"seq": seq, "kind": "decision", "case_id": cid, "record": {
                "version": 1, "decided_by": by, "role": "gp", "decided_at": ref_at or D(day, "09:30:00"),
                "outcome": "overridden", "category": cat, "referral": "requested" if ref_at else "none",
                "follow_up": fu}})
    a = post("/sync/v1/push", {"node": node, "changes": ch, "audit": []}, node)
    print("push", node, a["acked_seq"], a["applied"])
PY
check "the synthetic cases arrived through the signed push" "grep -q 'push c1 18 18' '$T/push.out' && grep -q 'push c2 5 5' '$T/push.out'"

# Replies (plan; reply day), histology, openings.
reply() { "$B" hub reply --db "$DB" --node $1 --case $2 --plan $3 --by $4 >/dev/null; psql_q "UPDATE hub_replies SET created_at = '$5' WHERE id = (SELECT max(id) FROM hub_replies)" >/dev/null; }
reply c1 1 biopsy drA 2026-11-04T09:00:00Z        # 2 days after the visit
reply c1 2 reassure drA 2026-11-06T09:00:00Z      # 3
reply c1 3 follow_up drA 2026-11-08T09:00:00Z     # 4
reply c1 4 biopsy drA 2026-11-10T09:00:00Z        # 5 (histology benign below)
reply c1 6 urgent_visit drA 2026-11-12T09:00:00Z  # 6
reply c2 7 urgent_visit drB 2026-11-20T09:00:00Z   # 10
"$B" hub outcome --db "$DB" --node c1 --case 1 --histology malignant --by drA >/dev/null
"$B" hub outcome --db "$DB" --node c1 --case 4 --histology benign --by drA >/dev/null
"$B" hub outcome --db "$DB" --node c1 --case 6 --histology malignant --by drA >/dev/null
check "a histology other than malignant|benign is refused" "! '$B' hub outcome --db '$DB' --node c1 --case 1 --histology maybe --by drA 2>/dev/null"
check "an outcome for an unknown case is refused" "! '$B' hub outcome --db '$DB' --node c1 --case 99 --histology benign --by drA 2>/dev/null"
for x in "drA c1 1" "drA c1 2" "drB c2 7" "drA c2 7"; do set -- $x
  hcurl $1 -sf "$(HUB)/api/v1/cases/$2/$3" >/dev/null; done
check "opening a case records the dermatologist's first opening" "[ \$(psql_q 'SELECT count(*) FROM hub_case_views') -eq 4 ]"
hcurl drA -sf "$(HUB)/api/v1/cases/c1/1" >/dev/null
check "a second opening keeps the first" "[ \$(psql_q 'SELECT count(*) FROM hub_case_views') -eq 4 ]"
psql_q "UPDATE hub_case_views v SET first_opened_at = r.created_at - (CASE v.case_id WHEN 1 THEN 30 WHEN 2 THEN 10 ELSE 90 END) * interval '1 minute' FROM hub_replies r WHERE r.node_id = v.node_id AND r.case_id = v.case_id" >/dev/null
printf '{"currency": "MAD", "per_case": 10, "per_review": 50, "per_biopsy": 200, "per_urgent_visit": 100}\n' > "$T/costs.json"

IND() { "$B" hub indicators --db "$DB" --json --as-of 2026-12-31 --from 2026-11-01 --to 2026-11-28 "$@"; }
check "hub indicators --json" "IND --costs '$T/costs.json' > '$T/all.json'"
check "every figure of the whole set, against hand-computed numbers" "python3 - '$T/all.json' <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
g = doc['groups']
assert len(g) == 1 and g[0]['key'] == 'all' and g[0]['cases'] == 8, g
v = {i['id']: i for i in g[0]['indicators']}
assert len(v) == 12 and all(i['name'] for i in v.values())
close = lambda a, b: a is not None and abs(a - b) < 1e-6
def prop(id, k, n, lo, hi):
    i = v[id]
    assert (i['k'], i['n']) == (k, n), (id, i)
    assert close(i['value'], k / n) and close(i['interval']['lo'], lo) and close(i['interval']['hi'], hi), (id, i)
    assert i['interval']['method'] == 'wilson'
# referrals of cases 1, 2, 6, 7: 1 h, 1, 2, 3 days; median 1.5, p90 2.7; n = 4: no exact 95% interval
r = v['days_to_referral']
assert r['n'] == 4 and close(r['value'], 1.5) and close(r['p90'], 2.7) and r['interval']['lo'] is None, r
# first replies 2, 3, 4, 5, 6, 10 days: median 4.5, p90 8; ranks 1 and 6 (P(B <= 0) = 1/64)
r = v['days_to_reply']
assert r['n'] == 6 and close(r['value'], 4.5) and close(r['p90'], 8) and close(r['interval']['lo'], 2) and close(r['interval']['hi'], 10), r
# positives: 1 (malignant), 6 (malignant), 7 (urgent visit); 4 is benign despite its biopsy plan
prop('high_risk_triaged', 2, 3, 0.2076596008020477, 0.9385080552796037)
prop('high_risk_triaged_ai', 3, 3, 0.4385029682449546, 1)
prop('referral_ppv_high', 2, 3, 0.2076596008020477, 0.9385080552796037)  # 1+, 2-, 7+
prop('referral_ppv_medium', 1, 2, 0.09453120573423074, 0.9054687942657693)  # 3-, 6+ (5: no reply)
prop('referral_ppv_low', 0, 1, 0, 0.7934506856227626)  # 4- (8: no reply)
prop('follow_up_on_time', 1, 2, 0.09453120573423074, 0.9054687942657693)  # 3 back on 25/11; 5 never
# 7 decided cases, 3 GPs, 4 weeks; 6 replies, 2 dermatologists
assert close(v['cases_per_gp_week']['value'], 7 / 12) and v['cases_per_gp_week']['n'] == 3
assert close(v['replies_per_dermatologist_week']['value'], 6 / 8)
# review times 10, 30, 90 min (drA's opening of case 7 is not a review of hers)
r = v['review_minutes']
assert r['n'] == 3 and close(r['value'], 30) and close(r['p90'], 78), r
# 8 cases x 10 + 6 reviews x 50 + 2 biopsies x 200 + 2 urgent visits x 100 = 980; detected 1, 7
c = v['cost_per_high_risk_detected']
assert close(c['numerator'], 980) and c['n'] == 2 and close(c['value'], 490), c
assert doc['costs']['currency'] == 'MAD' and len(doc['definitions']) == 12
PY"
check "by clinic: c2 alone" "IND --costs '$T/costs.json' --by clinic | python3 -c '
import json, sys
g = {x[\"key\"]: x for x in json.load(sys.stdin)[\"groups\"]}
assert list(g) == [\"all\", \"c1\", \"c2\"] and g[\"c1\"][\"cases\"] == 6 and g[\"c2\"][\"cases\"] == 2, list(g)
v = {i[\"id\"]: i for i in g[\"c2\"][\"indicators\"]}
assert v[\"high_risk_triaged\"][\"k\"] == 1 and v[\"high_risk_triaged\"][\"n\"] == 1
assert abs(v[\"cost_per_high_risk_detected\"][\"value\"] - 170) < 1e-9  # 20 + 50 + 100
assert abs(v[\"days_to_reply\"][\"value\"] - 10) < 1e-9
'"
check "by week: ISO weeks of the first visits" "IND --by week | python3 -c '
import json, sys
g = {x[\"key\"]: x[\"cases\"] for x in json.load(sys.stdin)[\"groups\"]}
assert g == {\"all\": 8, \"2026-W45\": 5, \"2026-W46\": 2, \"2026-W48\": 1}, g
'"
check "by phototype group and age band" "IND --by phototype | python3 -c '
import json, sys
g = {x[\"key\"]: x[\"cases\"] for x in json.load(sys.stdin)[\"groups\"]}
assert g == {\"all\": 8, \"light\": 4, \"medium\": 2, \"dark\": 2}, g
' && IND --by age_band | python3 -c '
import json, sys
g = {x[\"key\"]: x[\"cases\"] for x in json.load(sys.stdin)[\"groups\"]}
assert g == {\"all\": 8, \"18-39\": 2, \"40-59\": 3, \"60-79\": 2, \"80+\": 1}, g
'"
check "the sex filter changes the figures" "IND --sex female | python3 -c '
import json, sys
g = json.load(sys.stdin)[\"groups\"][0]
v = {i[\"id\"]: i for i in g[\"indicators\"]}
assert g[\"cases\"] == 5 and (v[\"high_risk_triaged\"][\"k\"], v[\"high_risk_triaged\"][\"n\"]) == (1, 2), g
'"
check "the period filter: up to 2026-11-05" "[ \$('$B' hub indicators --db '$DB' --json --to 2026-11-05 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"groups\"][0][\"cases\"])') -eq 4 ]"
check "no cost parameters: the cost indicator is null" "IND | python3 -c '
import json, sys
d = json.load(sys.stdin); v = {i[\"id\"]: i for i in d[\"groups\"][0][\"indicators\"]}
assert d[\"costs\"] is None and v[\"cost_per_high_risk_detected\"][\"value\"] is None
'"
check "costs stored at the hub are used" "'$B' hub costs --db '$DB' --set '$T/costs.json' >/dev/null && IND | grep -q '\"numerator\": *980'"
printf '{"per_case": -1}\n' > "$T/bad.json"
check "negative costs are refused" "! '$B' hub indicators --db '$DB' --costs '$T/bad.json' 2>/dev/null"
check "a bad --by is refused" "! '$B' hub indicators --db '$DB' --by planet 2>/dev/null"
check "a bad date is refused" "! '$B' hub indicators --db '$DB' --from 2026-13 2>/dev/null"
check "text output" "'$B' hub indicators --db '$DB' | grep -q 'high_risk_triaged'"

# The HTTP API of the dashboard: admins and auditors only; JSON and CSV.
code=$(hcurl drA -s -o /dev/null -w '%{http_code}' "$(HUB)/api/v1/indicators")
check "a dermatologist cannot read the indicators (403)" "[ '$code' = 403 ]"
check "an auditor reads them, filtered, as JSON" "hcurl audA -sf '$(HUB)/api/v1/indicators?by=clinic&sex=female&as_of=2026-12-31' | python3 -c '
import json, sys
d = json.load(sys.stdin); g = {x[\"key\"]: x[\"cases\"] for x in d[\"groups\"]}
assert g == {\"all\": 5, \"c1\": 4, \"c2\": 1}, g
'"
check "names in the asker's language (fr)" "hcurl audA -sf -H 'Accept-Language: fr' '$(HUB)/api/v1/indicators' | grep -q 'Délai'"
check "CSV export" "hcurl audA -sf '$(HUB)/api/v1/indicators.csv?by=clinic' > '$T/ind.csv' && head -1 '$T/ind.csv' | grep -q '^group,id,name' && [ \$(wc -l < '$T/ind.csv') -eq 37 ]"
code=$(hcurl audA -s -o /dev/null -w '%{http_code}' "$(HUB)/api/v1/indicators.xls")
check "an unknown export format is not found (404)" "[ '$code' = 404 ]"
code=$(hcurl audA -s -o /dev/null -w '%{http_code}' "$(HUB)/api/v1/indicators?by=planet")
check "a bad group over the API (400)" "[ '$code' = 400 ]"
code=$(hcurl audA -s -o "$T/ind.pdf" -w '%{http_code}' "$(HUB)/api/v1/indicators.pdf?by=week&lang=ar")
check "PDF export (Arabic, per week)" "[ '$code' = 200 ] && head -c 5 '$T/ind.pdf' | grep -q '%PDF-'"
if command -v pdftotext >/dev/null; then
  check "the PDF has the indicators' Arabic names and the weeks" "pdftotext '$T/ind.pdf' - | grep -q 'طبيب الجلد' && pdftotext '$T/ind.pdf' - | grep -q '2026-W45'"
  hcurl audA -sf "$(HUB)/api/v1/indicators.pdf?clinic=c1&lang=fr" > "$T/fr.pdf"
  check "in French, filtered to one clinic" "pdftotext '$T/fr.pdf' - | grep -q 'Coût par cas à risque élevé détecté' && pdftotext '$T/fr.pdf' - | grep -q 'c1'"
fi
[ -n "${INDICATORS_KEEP:-}" ] && cp "$T"/*.pdf "$INDICATORS_KEEP"/
exit $fail
