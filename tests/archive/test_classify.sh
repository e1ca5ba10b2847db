#!/usr/bin/env bash
# basira classify with the shipped chest X-ray model on PneumoniaMNIST images: one JSON object
# per image (file, probabilities {normal, pneumonia} summing to 1, prediction at the model's
# threshold, model), errors as objects with exit 1, usage errors exit 2, and sane accuracy on
# the held-out images (the model card has the real figures). Skips without ../shared/data.
set -uo pipefail
B=${BASIRA_CLI:?}
M=${BASIRA_SOURCE_DIR:?}/models/basira-cxr-pneumonia.safetensors
D=${BASIRA_DATA:-}/pneumoniamnist
[ -f "$M" ] || { echo "FAIL: $M is missing"; exit 1; }
[ -d "$D/images" ] || { echo "SKIP: $D not found (needs ../shared/data)"; exit 77; }
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }

"$B" classify >/dev/null 2>&1; check "no model, no image: usage error" "[ $? -eq 2 ]"
"$B" classify --model "$M" >/dev/null 2>&1; check "no image: usage error" "[ $? -eq 2 ]"
# 100 held-out images (the "val" split, never used for training or calibration), 50 per class.
mapfile -t rows < <(tr -d '\r' < "$D/labels.csv" | awk -F, '$2=="val"' | awk -F, '
  $3==0 && n0<50 {print; n0++} $3==1 && n1<50 {print; n1++}')
files=() labels=()
for r in "${rows[@]}"; do files+=("$D/images/${r%%,*}"); labels+=("${r##*,}"); done
out=$("$B" classify --model "$M" --json "${files[@]}"); rc=$?
check "100 images classified (exit 0)" "[ $rc -eq 0 ]"
n=$(grep -c '"prediction"' <<<"$out")
check "one object per image (got $n)" "[ $n -eq 100 ]"
res=$(/usr/bin/python3 - "$out" "${labels[*]}" <<'PY'
import json, sys
objs = [json.loads(l) for l in sys.argv[1].splitlines()]
labels = [int(x) for x in sys.argv[2].split()]
ok = True
correct = 0
for o, y in zip(objs, labels):
    p = o["probabilities"]
    ok &= set(p) == {"normal", "pneumonia"} and abs(p["normal"] + p["pneumonia"] - 1) < 1e-4
    ok &= o["prediction"] == ("pneumonia" if p["pneumonia"] >= o["threshold"] else "normal")
    ok &= o["model"].startswith("basira-cxr-pneumonia ") and o["file"].endswith(".png")
    correct += o["prediction"] == ("pneumonia" if y == 1 else "normal")
print("fields" if ok else "bad-fields", correct)
PY
)
check "fields, probabilities and threshold consistent" "[ '${res%% *}' = fields ]"
check "accuracy on 100 held-out images >= 0.85 (got ${res##* }/100)" "[ ${res##* } -ge 85 ]"
out=$("$B" classify --model "$M" --json "${files[0]}" /nonexistent.png 2>/dev/null); rc=$?
check "a missing image: exit 1" "[ $rc -eq 1 ]"
check "a missing image: an error object, the other image still classified" \
  "grep -q '\"error\"' <<<\"\$out\" && grep -q '\"prediction\"' <<<\"\$out\""
out=$(LANG=fr_FR.UTF-8 "$B" classify --model "$M" "${files[0]}")
check "human output in French" "grep -Eq 'Normal|Pneumonie' <<<\"\$out\""
[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all classify checks passed"
