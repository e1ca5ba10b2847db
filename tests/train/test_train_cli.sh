#!/usr/bin/env bash
# `basira train` command line: help, usage errors (exit 2), clear failures (exit 1), languages.
set -u
B=${BASIRA_CLI:?}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$B" help train >"$tmp/help"; rc=$?
check "help exits 0" "[ $rc -eq 0 ]"
check "help lists --group-col" "grep -q -- '--group-col' '$tmp/help'"
LANG=fr_FR.UTF-8 "$B" help train >"$tmp/help.fr"
check "help in French" "grep -q 'Entraîner un classifieur' '$tmp/help.fr'"
LANG=ar_MA.UTF-8 "$B" help train >"$tmp/help.ar"
check "help in Arabic" "grep -q 'تدريب مصنِّف' '$tmp/help.ar'"

"$B" train >/dev/null 2>&1; rc=$?
check "no options is a usage error" "[ $rc -eq 2 ]"
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --split 0.5,0.5 2>"$tmp/err"; rc=$?
check "bad --split is a usage error" "[ $rc -eq 2 ] && grep -q 'split' '$tmp/err'"
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --augment heavy 2>/dev/null; rc=$?
check "bad --augment is a usage error" "[ $rc -eq 2 ]"
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --precision fp16 2>"$tmp/err"; rc=$?
check "bad --precision is a usage error" "[ $rc -eq 2 ] && grep -q 'precision' '$tmp/err'"
check "help lists --precision and --profile" "grep -q -- '--precision' '$tmp/help' && grep -q -- '--profile' '$tmp/help'"
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --batch 1 2>/dev/null; rc=$?
check "--batch 1 is a usage error" "[ $rc -eq 2 ]"
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" extra 2>/dev/null; rc=$?
check "stray argument is a usage error" "[ $rc -eq 2 ]"

# --mixup ALPHA: listed in every language; out of range or not a number is a usage error.
check "help lists --mixup" "grep -q -- '--mixup ALPHA' '$tmp/help'"
check "--mixup in French and Arabic" "grep -q 'Mixup (une régularisation' '$tmp/help.fr' && grep -q 'Mixup (أداة تنظيم' '$tmp/help.ar'"
for v in -0.1 11 abc; do
  "$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --mixup "$v" 2>"$tmp/err"; rc=$?
  check "--mixup $v is a usage error" "[ $rc -eq 2 ] && grep -q -- '--mixup' '$tmp/err'"
done
"$B" train --images "$tmp" --csv "$tmp/none.csv" --out "$tmp/o" --mixup 0.2 2>"$tmp/err"; rc=$?
check "--mixup 0.2 is accepted" "[ $rc -eq 1 ] && grep -q 'none.csv' '$tmp/err'"

# --contrastive TAU / --proj-dim N: listed in every language; bad values are usage errors, an
# odd batch or mixup with it a usage error that names --contrastive.
check "help lists --contrastive and --proj-dim" "grep -q -- '--contrastive TAU' '$tmp/help' && grep -q -- '--proj-dim N' '$tmp/help'"
check "--contrastive in French and Arabic" "grep -q 'Pré-entraînement auto-supervisé' '$tmp/help.fr' && grep -q 'تدريب مسبق ذاتي الإشراف' '$tmp/help.ar'"
for v in 0 11 abc; do
  "$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --contrastive "$v" 2>"$tmp/err"; rc=$?
  check "--contrastive $v is a usage error" "[ $rc -eq 2 ] && grep -q -- '--contrastive' '$tmp/err'"
done
for v in 4 2000 x; do
  "$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --contrastive 0.2 --proj-dim "$v" 2>"$tmp/err"; rc=$?
  check "--proj-dim $v is a usage error" "[ $rc -eq 2 ] && grep -q -- '--proj-dim' '$tmp/err'"
done
for extra in "--batch 63" "--mixup 0.2"; do
  "$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --contrastive 0.2 $extra 2>"$tmp/err"; rc=$?
  check "--contrastive with $extra is a usage error" "[ $rc -eq 2 ] && grep -q -- '--contrastive needs' '$tmp/err'"
done
LANG=fr_FR.UTF-8 "$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --contrastive 0.2 --batch 63 2>"$tmp/err"
check "its refusal in French" "grep -q -- '--contrastive demande un --batch pair' '$tmp/err'"

# --input-size is N or WxH; every malformed or out-of-range form is a usage error that names it.
for v in 160x 'x120' 160x12 abcx120 160x120x90 12345678901234567890x120 8 2000x100; do
  "$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --input-size "$v" 2>"$tmp/err"; rc=$?
  check "--input-size $v is a usage error" "[ $rc -eq 2 ] && grep -q -- '--input-size' '$tmp/err'"
done
# A 4:3 size is accepted: the run gets as far as the (missing) CSV.
"$B" train --images "$tmp" --csv "$tmp/none.csv" --out "$tmp/o" --input-size 160x120 2>"$tmp/err"; rc=$?
check "--input-size 160x120 is accepted" "[ $rc -eq 1 ] && grep -q 'none.csv' '$tmp/err'"

# A missing CSV fails with status 1 and names the file, in the user's language.
"$B" train --images "$tmp" --csv "$tmp/none.csv" --out "$tmp/o" 2>"$tmp/err"; rc=$?
check "missing CSV fails with 1" "[ $rc -eq 1 ]"
check "message names the CSV" "grep -q 'none.csv' '$tmp/err'"
LANG=fr_FR.UTF-8 "$B" train --images "$tmp" --csv "$tmp/none.csv" --out "$tmp/o" 2>"$tmp/err.fr"
check "French failure message" "grep -q 'impossible' '$tmp/err.fr'"

# A malformed CSV names its line.
printf 'image,label\na.jpg,x\nb.jpg,"y\n' >"$tmp/bad.csv"
"$B" train --images "$tmp" --csv "$tmp/bad.csv" --out "$tmp/o" 2>"$tmp/err"; rc=$?
check "malformed CSV fails with 1" "[ $rc -eq 1 ]"
check "message names line 3" "grep -q 'line 3' '$tmp/err'"
# basira split: groups stay whole, parts follow the fractions, same seed same files.
{
  echo "id,label,patient"
  for i in $(seq 1 120); do echo "r$i,$([ $((i % 3)) -eq 0 ] && echo mel || echo nv),p$((i / 2))"; done
} >"$tmp/rows.csv"
mkdir -p "$tmp/s1" "$tmp/s2" "$tmp/s3"
"$B" split --csv "$tmp/rows.csv" --label-col label --group-col patient --split 0.5,0.25,0.25 \
  --out "$tmp/s1" >/dev/null; rc=$?
check "split exits 0" "[ $rc -eq 0 ]"
n=$(cat "$tmp/s1/train.csv" "$tmp/s1/val.csv" "$tmp/s1/test.csv" | grep -vc '^id,')
check "split keeps all 120 rows" "[ $n -eq 120 ]"
ntrain=$(grep -vc '^id,' "$tmp/s1/train.csv")
check "train part near 50%" "[ $ntrain -ge 54 ] && [ $ntrain -le 66 ]"
dup=$(for p in train val test; do tail -n +2 "$tmp/s1/$p.csv" | cut -d, -f3 | sort -u; done | sort | uniq -d | wc -l)
check "no patient in two parts" "[ $dup -eq 0 ]"
"$B" split --csv "$tmp/rows.csv" --label-col label --group-col patient --split 0.5,0.25,0.25 \
  --out "$tmp/s2" >/dev/null
check "same seed, same split" "cmp -s '$tmp/s1/val.csv' '$tmp/s2/val.csv'"
"$B" split --csv "$tmp/rows.csv" --label-col label --group-col patient --split 0.5,0.25,0.25 \
  --seed 2 --out "$tmp/s3" >/dev/null
check "another seed, another split" "! cmp -s '$tmp/s1/val.csv' '$tmp/s3/val.csv'"
"$B" split --csv "$tmp/rows.csv" --label-col diagnosis --out "$tmp/s3" 2>"$tmp/err"; rc=$?
check "unknown column fails with 1" "[ $rc -eq 1 ] && grep -q diagnosis '$tmp/err'"
"$B" split --csv "$tmp/rows.csv" --out "$tmp/s3" 2>/dev/null; rc=$?
check "split without --label-col is a usage error" "[ $rc -eq 2 ]"
exit $fail
