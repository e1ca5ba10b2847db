#!/usr/bin/env bash
# `basira ensemble` and `basira train --split-seed`. Without data: usage errors, models that
# cannot be averaged (the bundled ones), an ensemble of a model with itself. DATA: two tiny
# networks trained on the same split with other seeds, joined, whose probabilities are the
# mean of theirs; calibrated, evaluated and quantized like any model; trained from (its
# first network) with --init-from.
set -u
B=${BASIRA_CLI:?}
M=${BASIRA_SOURCE_DIR:?}/models
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$B" help ensemble >"$out/help"; rc=$?
check "help ensemble exits 0" "[ $rc -eq 0 ] && grep -q -- '--out' '$out/help'"
LANG=fr_FR.UTF-8 "$B" help ensemble >"$out/help.fr"
check "help in French" "grep -q 'moyenne' '$out/help.fr'"
"$B" ensemble --out "$out/e.safetensors" "$M/basira-derm.safetensors" 2>"$out/err"; rc=$?
check "one model is a usage error" "[ $rc -eq 2 ] && grep -q 'two models' '$out/err'"
"$B" ensemble "$M/basira-derm.safetensors" "$M/basira-derm.safetensors" 2>/dev/null; rc=$?
check "no --out is a usage error" "[ $rc -eq 2 ]"
"$B" ensemble --out "$out/e.safetensors" --bogus a b 2>/dev/null; rc=$?
check "unknown option is a usage error" "[ $rc -eq 2 ]"
"$B" ensemble --out "$out/e.safetensors" "$M/basira-derm.safetensors" \
  "$M/basira-clinical.safetensors" 2>"$out/err"; rc=$?
check "other classes are refused, naming the file" \
  "[ $rc -eq 1 ] && grep -q 'basira-clinical.safetensors differs' '$out/err' && [ ! -e '$out/e.safetensors' ]"
LANG=fr_FR.UTF-8 "$B" ensemble --out "$out/e.safetensors" "$M/basira-derm.safetensors" \
  "$M/basira-modality.safetensors" 2>"$out/err.fr"; rc=$?
check "refusal in French" "[ $rc -eq 1 ] && grep -q 'moyenne' '$out/err.fr'"
"$B" ensemble --out "$out/e.safetensors" "$M/basira-derm.safetensors" "$out/none.safetensors" \
  2>"$out/err"; rc=$?
check "a missing model fails and names it" "[ $rc -eq 1 ] && grep -q 'none.safetensors' '$out/err'"
# A model with itself: the same probabilities (the mean of equal rows), twice its networks.
nets() { python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"].get("ensemble","1"))' "$1"; }
n=$(nets "$M/basira-derm.safetensors")
"$B" ensemble --out "$out/dd.safetensors" --model-version 9.9.9 "$M/basira-derm.safetensors" \
  "$M/basira-derm.safetensors" >"$out/msg"; rc=$?
check "derm + derm written: twice the bundled model's $n network(s)" \
  "[ $rc -eq 0 ] && grep -q 'Ensemble of $((2 * n))' '$out/msg' && grep -q 'calibrate' '$out/msg' && [ \"\$(nets '$out/dd.safetensors')\" = $((2 * n)) ]"
# Nine models of at least one network each: more than 8.
"$B" ensemble --out "$out/d9.safetensors" $(for i in 1 2 3 4 5 6 7 8 9; do
  echo "$M/basira-derm.safetensors"; done) 2>"$out/err"; rc=$?
check "more than 8 networks are refused" "[ $rc -eq 1 ] && grep -q 'at most 8' '$out/err' && [ ! -e '$out/d9.safetensors' ]"

D=${BASIRA_DATA:-}
if [ -z "$D" ] || [ ! -d "$D/ham10000/images" ]; then
  echo "SKIP: ../shared/data not found (set BASIRA_DATA); the trained ensemble needs HAM10000"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
I="$D/ham10000/images"
{ head -1 "$D/ham10000/metadata.csv"
  tail -n +2 "$D/ham10000/metadata.csv" | awk 'NR % 60 <= 1'; } | tr -d '\r' >"$out/small.csv"
train() { # name seed [options]
  local name=$1 seed=$2; shift 2
  "$B" train --images "$I" --csv "$out/small.csv" --image-col image_id --label-col dx \
    --group-col lesion_id --classes "$M/ham10000-classes.json" --arch resnet --width 8 --depth 1 \
    --input-size 32 --epochs 1 --batch 16 --threads 1 --quiet --seed "$seed" "$@" \
    --out "$out/$name" >/dev/null 2>"$out/$name.err"
}
train a 1; ra=$?
train b 2 --split-seed 1; rb=$?
train c 2; rc=$?
check "three tiny runs exit 0" "[ $ra -eq 0 ] && [ $rb -eq 0 ] && [ $rc -eq 0 ]"
check "--split-seed 1 keeps seed 1's split" "cmp -s '$out/a/val.csv' '$out/b/val.csv' && cmp -s '$out/a/test.csv' '$out/b/test.csv'"
check "seed 2 alone draws another split" "! cmp -s '$out/a/val.csv' '$out/c/val.csv'"
check "the other seed trains other weights" "! cmp -s '$out/a/best.safetensors' '$out/b/best.safetensors'"
"$B" ensemble --out "$out/ab.safetensors" "$out/a/best.safetensors" "$out/b/best.safetensors" \
  >/dev/null; rc=$?
check "a + b written" "[ $rc -eq 0 ]"
# Training from an ensemble starts from its first network (a here), by name.
train fromab 3 --init-from "$out/ab.safetensors"; rc=$?
check "--init-from an ensemble trains one network" "[ $rc -eq 0 ] && [ \"\$(nets '$out/fromab/best.safetensors')\" = 1 ]"
imgs=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "image_id") c = i; next }
  NR <= 9 { print $c }' "$out/a/test.csv" | sed "s|^|$I/|; s|$|.jpg|")
for m in a b; do "$B" classify --model "$out/$m/best.safetensors" --json $imgs >"$out/$m.jsonl"; done
"$B" classify --model "$out/ab.safetensors" --json $imgs >"$out/ab.jsonl"
check "the ensemble's probabilities are the mean of its members'" "python3 - '$out' <<'PY'
import json, sys
d = sys.argv[1]
rows = [[json.loads(l)['probabilities'] for l in open(f'{d}/{m}.jsonl')] for m in ('a', 'b', 'ab')]
assert len(rows[0]) == 8 and all(len(r) == 8 for r in rows)
worst = max(abs((pa[c] + pb[c]) / 2 - pe[c]) for pa, pb, pe in zip(*rows) for c in pa)
differ = max(abs(pa[c] - pb[c]) for pa, pb in zip(rows[0], rows[1]) for c in pa)
sys.exit(0 if worst < 1e-5 and differ > 1e-4 else 1)
PY"
"$B" calibrate --model "$out/ab.safetensors" --images "$I" --csv "$out/a/val.csv" \
  --out "$out/abc.safetensors" --json "$out/cal.json" >/dev/null 2>"$out/cal.err"; rc=$?
check "calibrate an ensemble" "[ $rc -eq 0 ] || grep -q 'below' '$out/cal.err'"
check "the calibrated file is still an ensemble of 2" \
  "python3 -c 'import json,struct,sys; f=open(\"$out/abc.safetensors\",\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0]; m=json.loads(f.read(n))[\"__metadata__\"]; b=json.loads(m[\"basira\"]); sys.exit(m[\"ensemble\"]!=\"2\" or len(b[\"ensemble\"])!=2)'"
# --malignant-slope: the same temperature, then P(malignant) mapped by the slope and bias it
# stores: each image's P(malignant) is sigmoid(a logit(p) + b) of the temperature-only model's.
"$B" calibrate --model "$out/ab.safetensors" --images "$I" --csv "$out/a/val.csv" --malignant-slope \
  --out "$out/abs.safetensors" --json "$out/cals.json" >/dev/null 2>"$out/cals.err"; rc=$?
check "calibrate --malignant-slope exits 0" "[ $rc -eq 0 ]"
"$B" calibrate --model "$out/ab.safetensors" --images "$I" --csv "$out/a/val.csv" --malignant-slope \
  --malignant-bias --out "$out/x.safetensors" >/dev/null 2>&1; rc=$?
check "--malignant-slope with --malignant-bias is a usage error" "[ $rc -eq 2 ] && [ ! -e '$out/x.safetensors' ]"
cut -d, -f2 "$out/a/val.csv" | tail -n +2 | sed "s|^|$I/|; s|$|.jpg|" >"$out/val-images.txt"
for m in abc abs; do xargs "$B" classify --model "$out/$m.safetensors" --json <"$out/val-images.txt" >"$out/$m.jsonl"; done
check "the written slope and bias are what the classifier applies" "python3 - '$out' <<'PY'
import json, math, struct, sys
d = sys.argv[1]
f = open(f'{d}/abs.safetensors', 'rb'); n = struct.unpack('<Q', f.read(8))[0]
meta = json.loads(json.loads(f.read(n))['__metadata__']['basira'])
a, b = meta['malignant_slope'], meta['malignant_bias']
rec = json.load(open(f'{d}/cals.json'))
mal = {c['code'] for c in meta['classes'] if c['malignant']}
pm = lambda r: sum(v for k, v in r['probabilities'].items() if k in mal)
ok = abs(rec['malignant_slope'] - a) < 1e-8 and 0.25 <= a <= 4 and rec['malignant_slope_before'] == 1
for lc, ls in zip(open(f'{d}/abc.jsonl'), open(f'{d}/abs.jsonl')):
    p, q = pm(json.loads(lc)), pm(json.loads(ls))
    p = min(max(p, 1e-7), 1 - 1e-7)
    ok = ok and abs(q - 1 / (1 + math.exp(-(a * math.log(p / (1 - p)) + b)))) < 2e-4
sys.exit(0 if ok else 1)
PY"
# --storage f16: the weights in half precision (both networks), kept when quantized again.
"$B" calibrate --model "$out/ab.safetensors" --images "$I" --csv "$out/a/val.csv" --storage f16 \
  --out "$out/abh.safetensors" >/dev/null 2>"$out/calh.err"; rc=$?
dtypes() { python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; h=json.loads(f.read(n)); m=h.pop("__metadata__"); print(m.get("storage","-"), " ".join(sorted({v["dtype"] for v in h.values()})))' "$1"; }
check "calibrate --storage f16 writes every tensor in F16" "[ $rc -eq 0 ] && [ \"\$(dtypes '$out/abh.safetensors')\" = 'F16 F16' ]"
check "half the size" "[ \$(stat -c %s '$out/abh.safetensors') -lt \$(( \$(stat -c %s '$out/abc.safetensors') * 6 / 10 )) ]"
"$B" quantize --model "$out/abh.safetensors" --images "$I" --calibrate "$out/a/val.csv" \
  --csv "$out/a/test.csv" --out "$out/abh8.safetensors" --quiet >/dev/null 2>&1; rc=$?
check "quantize keeps the storage" "[ $rc -eq 0 ] && [ \"\$(dtypes '$out/abh8.safetensors')\" = 'F16 F16' ]"
"$B" calibrate --model "$out/ab.safetensors" --images "$I" --csv "$out/a/val.csv" --storage f8 \
  --out "$out/x.safetensors" >/dev/null 2>&1; rc=$?
check "--storage f8 is a usage error" "[ $rc -eq 2 ]"
"$B" evaluate --model "$out/abc.safetensors" --images "$I" --csv "$out/a/test.csv" \
  --json "$out/ev.json" >/dev/null 2>&1; rc=$?
check "evaluate an ensemble" "[ $rc -eq 0 ] && [ -s '$out/ev.json' ]"
"$B" quantize --model "$out/abc.safetensors" --images "$I" --calibrate "$out/a/val.csv" \
  --csv "$out/a/test.csv" --out "$out/ab8.safetensors" --quiet >/dev/null 2>"$out/q.err"; rc=$?
check "quantize an ensemble: both members get int8 ranges" \
  "[ $rc -eq 0 ] && python3 -c 'import json,struct,sys; f=open(\"$out/ab8.safetensors\",\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0]; m=json.loads(f.read(n))[\"__metadata__\"]; sys.exit(\"int8_calibration\" not in m or \"member1.int8_calibration\" not in m)'"
exit $fail
