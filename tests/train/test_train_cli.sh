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
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" --batch 1 2>/dev/null; rc=$?
check "--batch 1 is a usage error" "[ $rc -eq 2 ]"
"$B" train --images "$tmp" --csv x.csv --out "$tmp/o" extra 2>/dev/null; rc=$?
check "stray argument is a usage error" "[ $rc -eq 2 ]"

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
exit $fail
