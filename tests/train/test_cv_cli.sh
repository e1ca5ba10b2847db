#!/usr/bin/env bash
# DATA: `basira cv` on a few HAM10000 images (2 folds, 1 epoch, a tiny network, --augment
# shift): no lesion in two folds, every fold in the summary, a finished fold is not redone,
# --dup-groups; then `basira shift-check` on a fold's model. Usage errors need no data.
set -u
B=${BASIRA_CLI:?}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$B" help cv >"$out/help"; rc=$?
check "help cv exits 0" "[ $rc -eq 0 ] && grep -q -- '--folds' '$out/help'"
"$B" cv --images "$out" --csv x.csv --out "$out/o" --folds 1 2>/dev/null; rc=$?
check "--folds 1 is a usage error" "[ $rc -eq 2 ]"
"$B" cv --images "$out" --csv x.csv --out "$out/o" --thresholds 0,2 2>/dev/null; rc=$?
check "bad --thresholds is a usage error" "[ $rc -eq 2 ]"
"$B" cv --images "$out" --csv x.csv --out "$out/o" --augment heavy 2>/dev/null; rc=$?
check "a bad train option is a usage error" "[ $rc -eq 2 ]"
"$B" shift-check --model m --images "$out" --csv x.csv --shifts fog 2>"$out/err"; rc=$?
check "unknown shift is a usage error" "[ $rc -eq 2 ] && grep -q fog '$out/err'"

D=${BASIRA_DATA:-}
if [ -z "$D" ] || [ ! -d "$D/ham10000/images" ]; then
  echo "SKIP: ../shared/data not found (set BASIRA_DATA); the CV run needs HAM10000"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
# 3 images in 70, in file order: lesions with several images stay together and most
# classes appear.
{ head -1 "$D/ham10000/metadata.csv"
  tail -n +2 "$D/ham10000/metadata.csv" | awk 'NR % 70 <= 2'; } | tr -d '\r' >"$out/small.csv"
n=$(($(wc -l <"$out/small.csv") - 1))
run_cv() {
  "$B" cv --images "$D/ham10000/images" --csv "$out/small.csv" --image-col image_id --label-col dx \
    --group-col lesion_id --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" \
    --arch resnet --width 8 --depth 1 --input-size 32 --epochs 1 --batch 16 --folds 2 --augment shift \
    --threads 1 --quiet --out "$out/cv"
}
run_cv >"$out/stdout" 2>"$out/stderr"; rc=$?
cat "$out/stderr" | tail -3
check "cv exits 0" "[ $rc -eq 0 ]"
check "folds.csv has every row" "[ \$(tail -n +2 '$out/cv/folds.csv' | wc -l) -eq $n ]"
# No lesion in two folds: folds.csv keeps the CSV's order, lesion ids from the CSV.
paste -d, <(tail -n +2 "$out/small.csv" | cut -d, -f1) <(tail -n +2 "$out/cv/folds.csv" | cut -d, -f4) |
  sort -u | cut -d, -f1 | sort | uniq -d >"$out/dups"
check "no lesion in two folds" "[ ! -s '$out/dups' ]"
for f in 0 1; do
  check "fold $f held out and scored" "[ -s '$out/cv/fold-$f/fold.json' ] && [ -s '$out/cv/fold-$f/best.safetensors' ]"
  # The held-out part is exactly the fold.
  a=$(tail -n +2 "$out/cv/fold-$f/test.csv" | cut -d, -f2 | sort | tr '\n' ' ')
  b=$(tail -n +2 "$out/cv/folds.csv" | awk -F, -v f=$f '$4 == f {print $1}' | sort | tr '\n' ' ')
  check "fold $f test part is the fold" "[ \"$a\" = \"$b\" ]"
done
check "summary has both folds" \
  "python3 -c 'import json,sys; d=json.load(open(\"$out/cv/cv-summary.json\")); sys.exit(len(d[\"per_fold\"])!=2 or d[\"folds\"]!=2)'"
check "summary has a threshold and per-fold specificity" \
  "python3 -c 'import json,sys; d=json.load(open(\"$out/cv/cv-summary.json\")); t=d[\"threshold\"][\"shipped_medium\"]; sys.exit(not (0<t<1) or any(\"specificity\" not in f[\"at_shipped_threshold\"] for f in d[\"per_fold\"]))'"
check "Markdown summary has a mean row" "grep -q '± ' '$out/cv/cv-summary.md'"
# Rerun: both folds are already done.
run_cv >/dev/null 2>"$out/stderr2"; rc=$?
check "rerun exits 0 and redoes nothing" "[ $rc -eq 0 ] && [ \$(grep -c 'already done' '$out/stderr2') -eq 2 ] && ! grep -q training '$out/stderr2'"

# --tta 4: the same folds, scored again with 4 views each (no training), and recorded so.
cp -r "$out/cv" "$out/cv4"
"$B" cv --images "$D/ham10000/images" --csv "$out/small.csv" --image-col image_id --label-col dx \
  --group-col lesion_id --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" \
  --arch resnet --width 8 --depth 1 --input-size 32 --epochs 1 --batch 16 --folds 2 --augment shift \
  --threads 1 --quiet --tta 4 --out "$out/cv4" >/dev/null 2>"$out/stderr4"; rc=$?
check "cv --tta 4 rescores without training" "[ $rc -eq 0 ] && ! grep -q 'already done' '$out/stderr4' && ! grep -q training '$out/stderr4'"
check "fold.json records 4 views and other probabilities" \
  "python3 -c 'import json,sys; a=json.load(open(\"$out/cv/fold-0/fold.json\")); b=json.load(open(\"$out/cv4/fold-0/fold.json\")); sys.exit(b[\"tta\"]!=4 or a[\"tta\"]!=1 or a[\"p_malignant\"]==b[\"p_malignant\"] or a[\"model_sha256\"]!=b[\"model_sha256\"])'"
"$B" cv --images "$out" --csv x.csv --out "$out/o" --tta 3 2>"$out/err"; rc=$?
check "--tta 3 is a usage error" "[ $rc -eq 2 ] && grep -q -- '--tta' '$out/err'"
# A 4:3 recipe (40x30) cross-validates too; its folds are scored with 4 views.
"$B" cv --images "$D/ham10000/images" --csv "$out/small.csv" --image-col image_id --label-col dx \
  --group-col lesion_id --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" \
  --arch resnet --width 8 --depth 1 --input-size 40x30 --epochs 1 --batch 16 --folds 2 \
  --threads 1 --quiet --tta 4 --out "$out/cv43" >/dev/null 2>"$out/stderr5"; rc=$?
check "cv with --input-size 40x30 exits 0" "[ $rc -eq 0 ] && [ -s '$out/cv43/cv-summary.json' ]"
"$B" cv --images "$D/ham10000/images" --csv "$out/small.csv" --image-col image_id --label-col dx \
  --group-col lesion_id --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" \
  --arch resnet --width 8 --depth 1 --input-size 40x30 --epochs 1 --batch 16 --folds 2 \
  --threads 1 --quiet --tta 8 --out "$out/cv43" >/dev/null 2>"$out/stderr6"; rc=$?
check "8 views of a 4:3 model are refused" "[ $rc -eq 2 ] && grep -q 'square' '$out/stderr6'"

# --dup-groups: a dedup file linking the first image of 6 different lesions into one
# near-duplicate group puts all 6 lesions (and all their images) into one fold.
{ echo "image_id,dup_group,dhash"
  tail -n +2 "$out/small.csv" | awk -F, '!seen[$1]++ {print $2",g0,0"}' | head -6
  tail -n +2 "$out/small.csv" | awk -F, '{print $2",g"NR",0"}' | tail -n +7; } >"$out/dup.csv"
"$B" cv --images "$D/ham10000/images" --csv "$out/small.csv" --image-col image_id --label-col dx \
  --group-col lesion_id --dup-groups "$out/dup.csv" \
  --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" --arch resnet --width 8 --depth 1 \
  --input-size 32 --epochs 1 --batch 16 --folds 2 --threads 1 --quiet --stop-after-folds 1 \
  --out "$out/cvd" >/dev/null 2>"$out/stderr3"; rc=$?
check "cv --dup-groups --stop-after-folds 1 exits 0" "[ $rc -eq 0 ] && grep -q 'stopped after 1 of 2' '$out/stderr3'"
check "stopped before the summary" "[ ! -e '$out/cvd/cv-summary.json' ] && [ -s '$out/cvd/fold-0/fold.json' ]"
linked=$(tail -n +2 "$out/small.csv" | awk -F, '!seen[$1]++ {print $1}' | head -6 | tr '\n' '|')
folds=$(paste -d, <(tail -n +2 "$out/small.csv" | cut -d, -f1) <(tail -n +2 "$out/cvd/folds.csv" | cut -d, -f4) |
  awk -F, -v l="$linked" 'index(l, $1"|") {print $2}' | sort -u | wc -l)
check "linked lesions share one fold" "[ $folds -eq 1 ]"

"$B" shift-check --model "$out/cv/fold-0/best.safetensors" --images "$D/ham10000/images" \
  --csv "$out/cv/fold-0/test.csv" --shifts squash,jpeg --json "$out/shift.json" \
  --report "$out/shift.md" 2>/dev/null; rc=$?
check "shift-check exits 0" "[ $rc -eq 0 ]"
check "shift-check reports none, squash and jpeg" \
  "python3 -c 'import json,sys; d=json.load(open(\"$out/shift.json\")); sys.exit([s[\"shift\"] for s in d[\"shifts\"]]!=[\"none\",\"squash\",\"jpeg\"])'"
check "shift-check Markdown table" "[ \$(grep -c '^| ' '$out/shift.md') -eq 4 ]"
# basira train --split-col: the parts come from the data (a split a data steward fixed), whole
# lesions per part; a value that is not a part, or a lesion on two sides, is refused.
awk -F, -v OFS=, 'NR == 1 {print $0, "part"; next}
  {if (!($1 in p)) {n++; p[$1] = n % 5 == 0 ? "val" : n % 5 == 1 ? "test" : n % 7 == 3 ? "" : "train"}
   print $0, p[$1]}' "$out/small.csv" >"$out/fixed.csv"
run_fixed() { # CSV OUT
  "$B" train --images "$D/ham10000/images" --csv "$1" --image-col image_id --label-col dx \
    --group-col lesion_id --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" \
    --arch resnet --width 8 --depth 1 --input-size 32 --epochs 1 --batch 16 --augment none \
    --threads 1 --quiet --split-col part --out "$2"
}
run_fixed "$out/fixed.csv" "$out/fx" >/dev/null 2>"$out/fx.err"; rc=$?
check "train --split-col exits 0" "[ $rc -eq 0 ]"
for p in train val test; do
  want=$(awk -F, -v p=$p 'NR > 1 && $NF == p {print $2}' "$out/fixed.csv" | sort | tr '\n' ' ')
  got=$(python3 -c "import csv,sys; print(' '.join(sorted(r['image_id'] for r in csv.DictReader(open(sys.argv[1])))), end=' ')" "$out/fx/$p.csv")
  check "train --split-col: $p part as the column says" "[ -n '$want' ] && [ '$want' = '$got' ]"
done
check "train --split-col: rows with an empty part left out" \
  "[ \$(awk -F, 'NR > 1 && \$NF == \"\"' '$out/fixed.csv' | wc -l) -gt 0 ] && ! grep -q \"\$(awk -F, 'NR > 1 && \$NF == \"\" {print \$2; exit}' '$out/fixed.csv')\" '$out/fx/train.csv' '$out/fx/val.csv' '$out/fx/test.csv'"
check "train --split-col: recorded in the model's provenance" \
  "python3 -c 'import json,struct,sys; f=open(\"$out/fx/best.safetensors\",\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0]; m=json.loads(json.loads(f.read(n))[\"__metadata__\"][\"basira\"]); sys.exit(m[\"provenance\"][\"split\"][\"given_by\"]!=\"part\")'"
sed '3s/,[a-z]*$/,tset/' "$out/fixed.csv" >"$out/typo.csv"
run_fixed "$out/typo.csv" "$out/fx2" >/dev/null 2>"$out/fx2.err"; rc=$?
check "train --split-col: an unknown part is refused with its line" \
  "[ $rc -eq 1 ] && grep -q 'line 3' '$out/fx2.err' && grep -q tset '$out/fx2.err'"
# The second image of a lesion with two moved to the other side.
two=$(awk -F, 'NR > 1 && $NF != "" {print $1}' "$out/fixed.csv" | sort | uniq -d | head -1)
awk -F, -v OFS=, -v l="$two" '$1 == l && seen++ {$NF = ($NF == "train" ? "test" : "train")} 1' \
  "$out/fixed.csv" >"$out/cross.csv"
run_fixed "$out/cross.csv" "$out/fx3" >/dev/null 2>"$out/fx3.err"; rc=$?
check "train --split-col: a lesion on two sides is refused" \
  "[ -n '$two' ] && [ $rc -eq 1 ] && grep -q 'more than one part' '$out/fx3.err' && grep -q '$two' '$out/fx3.err'"
exit $fail
