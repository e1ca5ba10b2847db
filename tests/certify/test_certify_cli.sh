#!/usr/bin/env bash
# `basira certify` end to end: usage errors and invalid criteria (exit 2, before any
# prediction), then, with ../shared/data, the bundled dermoscopy model on 80 HAM10000
# images: JSON, PDF (ar), manifest, parent comparison, adjudication, exit 0 / 1.
set -u
B=${BASIRA_CLI:?}
SRC=${BASIRA_SOURCE_DIR:?}
MODEL=$SRC/models/basira-derm.safetensors
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
export OMP_NUM_THREADS=1

"$B" certify --model "$MODEL" >/dev/null 2>&1; rc=$?
check "missing options: usage error" "[ $rc -eq 2 ]"
echo '{"criteria": [' >"$T/bad.json"
"$B" certify --model "$MODEL" --images "$T" --csv "$T/none.csv" --criteria "$T/bad.json" \
  >"$T/out" 2>&1; rc=$?
check "invalid JSON criteria: exit 2" "[ $rc -eq 2 ] && grep -q 'line' '$T/out'"
echo '{"criteria": [{"metric": "acuracy", "op": ">=", "value": 0.9}]}' >"$T/typo.json"
"$B" certify --model "$MODEL" --images "$T" --csv "$T/none.csv" --criteria "$T/typo.json" \
  >"$T/out" 2>&1; rc=$?
check "unknown metric: exit 2 before reading the images" "[ $rc -eq 2 ] && grep -q acuracy '$T/out'"
"$B" certify --model "$MODEL" --images "$T" --csv x --criteria x --lang de >/dev/null 2>&1; rc=$?
check "unknown language: usage error" "[ $rc -eq 2 ]"

D=${BASIRA_DATA:-}/ham10000
if [ ! -f "$D/metadata.csv" ]; then
  echo "skipped: ../shared/data/ham10000 is absent (the rest needs real photos)"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
# 40 melanomas and 40 nevi; Fitzpatrick recorded for some (1-6 and I-VI), ITA for the others;
# the adjudicated label differs from the recorded one on 4 rows.
{
  echo "image_id,dx,fitzpatrick,adjudicated"
  awk -F, 'NR>1 && $3=="mel" {print $2","$3}' "$D/metadata.csv" | head -40
  awk -F, 'NR>1 && $3=="nv" {print $2","$3}' "$D/metadata.csv" | head -40
} | awk -F, 'NR==1 {print; next} {f = (NR % 3 == 0) ? "" : (NR % 2 ? "II" : "4");
             a = (NR % 20 == 0) ? ($2 == "mel" ? "nv" : "mel") : $2; print $1","$2","f","a}' \
  >"$T/test.csv"
cat >"$T/easy.json" <<'J'
{"min_group_n": 10, "criteria": [
  {"id": "auc", "metric": "auc", "op": ">=", "value": 0.5},
  {"id": "same-as-parent", "metric": "auc_vs_parent", "statistic": "upper", "op": ">=", "value": 0},
  {"id": "kappa", "metric": "kappa", "op": ">=", "value": 0.5}]}
J
cat >"$T/hard.json" <<'J'
{"min_group_n": 10, "criteria": [
  {"id": "auc", "metric": "auc", "op": ">=", "value": 0.5},
  {"id": "sens-each", "metric": "sensitivity", "statistic": "lower", "scope": "each_group",
   "op": ">=", "value": 0.999}]}
J
"$B" certify --model "$MODEL" --parent "$MODEL" --images "$D/images" --csv "$T/test.csv" \
  --criteria "$T/easy.json" --phototype-col fitzpatrick --adjudicated-col adjudicated \
  --json "$T/r.json" --pdf "$T/r.pdf" --lang ar --manifest "$T/manifest.txt" --bootstrap 200 \
  --quiet >"$T/out" 2>&1; rc=$?
cat "$T/out"
check "easy criteria: exit 0" "[ $rc -eq 0 ]"
check "PDF written" "head -c 4 '$T/r.pdf' | grep -q '%PDF'"
check "manifest has every row" "[ \$(wc -l <'$T/manifest.txt') -eq 80 ]"
python3 - "$T/r.json" "$T/manifest.txt" <<'PY' || fail=1
import hashlib, json, sys
r = json.load(open(sys.argv[1]))
ok = True
def check(name, cond):
    global ok
    print(("ok   " if cond else "FAIL ") + name)
    ok &= bool(cond)
check("manifest hash", r["test_set"]["manifest_sha256"] ==
      hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest())
check("80 cases, 40 malignant", r["n"] == 80 and r["overall"]["n_malignant"] == 40)
groups = {g["value"]: g for g in r["groups"]}
check("recorded phototypes II and IV", "II" in groups and "IV" in groups)
check("ITA categories for the rest", any(k not in ("I", "II", "III", "IV", "V", "VI")
                                         for k in groups))
check("groups add up", sum(g["n"] for g in r["groups"]) == 80)
p = r["parent"]
check("model vs itself: difference 0, p 1", abs(p["difference"]) < 1e-12 and p["p_value"] == 1)
a = r["adjudication"]
check("adjudication on 80, agreement 76/80",
      a["n"] == 80 and abs(a["kappa_malignant"]["observed_agreement"] - 0.95) < 1e-9)
check("every criterion passed", all(c["pass"] for c in r["criteria"]) and r["pass"])
check("model sha256", len(r["model"]["sha256"]) == 64)
ov = r["overall"]
check("FN + TP = malignant", ov["n_false_negatives"] + ov["sensitivity"]["k"] == 40)
sys.exit(0 if ok else 1)
PY
"$B" certify --model "$MODEL" --images "$D/images" --csv "$T/test.csv" \
  --criteria "$T/hard.json" --phototype-col fitzpatrick --json "$T/h.json" --bootstrap 0 \
  --quiet >"$T/out" 2>&1; rc=$?
check "a failed criterion: exit 1" "[ $rc -eq 1 ] && grep -q 'FAIL  sens-each' '$T/out'"
exit $fail
