#!/usr/bin/env bash
# DATA: `basira train --limit 200 --epochs 1` on HAM10000, then the model is used by
# `basira triage`: the whole chain from a CSV to a usable model, quickly.
set -u
B=${BASIRA_CLI:?}
D=${BASIRA_DATA:-}
if [ -z "$D" ] || [ ! -f "$D/README.md" ] || [ ! -d "$D/ham10000/images" ]; then
  echo "SKIP: ../shared/data not found (set BASIRA_DATA); this test needs HAM10000"
  exit 77
fi
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# CPU time, not wall time: CI machines are shared and a loaded one must not fail the test.
# One engine thread (plus the batch worker): two OpenMP threads spin badly on a busy machine.
TIMEFORMAT='%R %U %S'
{ time "$B" train --images "$D/ham10000/images" --csv "$D/ham10000/metadata.csv" \
  --image-col image_id --label-col dx --group-col lesion_id \
  --classes "$BASIRA_SOURCE_DIR/models/ham10000-classes.json" \
  --arch mobilenetv2 --width 16 --depth 10 --input-size 64 --epochs 1 --batch 32 \
  --limit 200 --seed 3 --threads 1 --out "$out/run" --quiet >"$out/stdout" 2>"$out/stderr"; } \
  2>"$out/time"
rc=$?
read -r real user sys <"$out/time"
cat "$out/stderr" "$out/stdout"
echo "basira train --limit 200 --epochs 1: ${real} s wall, ${user} s user, ${sys} s system"
check "train exits 0" "[ $rc -eq 0 ]"
for f in best.safetensors checkpoint.safetensors train.csv val.csv test.csv history.jsonl summary.json; do
  check "$f written" "[ -s '$out/run/$f' ]"
done
# The split files hold the 200 original rows, each lesion in one part only.
rows=$(cat "$out/run/train.csv" "$out/run/val.csv" "$out/run/test.csv" | grep -vc '^lesion_id,')
check "200 rows in the split files" "[ '$rows' -eq 200 ]"
# Rows are kept byte for byte; only the line ends become LF (the metadata file uses CRLF).
tr -d '\r' <"$D/ham10000/metadata.csv" >"$out/meta.csv"
check "header kept" "[ \"\$(head -1 '$out/run/val.csv')\" = \"\$(head -1 '$out/meta.csv')\" ]"
shared=$(for p in train val test; do tail -n +2 "$out/run/$p.csv" | cut -d, -f1 | sort -u | sed "s/\$/ $p/"; done |
         awk '{print $1}' | sort | uniq -d | wc -l)
check "no lesion in two parts" "[ '$shared' -eq 0 ]"
while IFS= read -r line; do
  grep -qxF "$line" "$out/meta.csv" || { echo "FAIL row not in metadata: $line"; fail=1; break; }
done < <(tail -n +2 "$out/run/test.csv")
check "history has epoch 1" "grep -q '\"epoch\":1' '$out/run/history.jsonl'"
check "summary names the best epoch" "grep -q '\"best_epoch\": 1' '$out/run/summary.json'"
check "under 60 s of CPU" "awk 'BEGIN { exit !($user + $sys < 60) }'"

# `basira split` with the same options gives exactly the same parts, without training.
mkdir -p "$out/split"
"$B" split --csv "$D/ham10000/metadata.csv" --label-col dx --group-col lesion_id --limit 200 \
  --seed 3 --out "$out/split" >/dev/null; rc=$?
check "split exits 0" "[ $rc -eq 0 ]"
for p in train val test; do
  check "split $p.csv = train's" "cmp -s '$out/split/$p.csv' '$out/run/$p.csv'"
done

# The model is usable by the triage pipeline as it is.
img="$D/ham10000/images/$(sed -n 2p "$out/run/test.csv" | cut -d, -f2).jpg"
res=$("$B" triage --model "$out/run/best.safetensors" --json --force "$img")
check "triage with the trained model" "grep -q '\"status\":\"ok\"' <<<\"\$res\""
check "seven class probabilities" "[ \$(grep -o '\"akiec\":\\|\"bcc\":\\|\"bkl\":\\|\"df\":\\|\"mel\":\\|\"nv\":\\|\"vasc\":' <<<\"\$res\" | sort -u | wc -l) -eq 7 ]"
exit $fail
