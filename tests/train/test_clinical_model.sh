#!/usr/bin/env bash
# The bundled clinical-photo model (models/basira-clinical.safetensors) and its recipe:
# - its classes are the 21 Fitzpatrick17k conditions with their partitions, and its card
#   names its SHA-256;
# - with ../shared/data: `basira triage --json` of test photos reports the three partitions
#   (sums over the conditions; non-neoplastic is not 0), the candidates in the user's
#   language; and models/basira-clinical/train.sh's steps run on 60 photos for 1 epoch.
set -u
B=${BASIRA_CLI:?}
SRC=${BASIRA_SOURCE_DIR:?}
MODEL=$SRC/models/basira-clinical.safetensors
CLASSES=$SRC/models/fitzpatrick17k-condition-classes.json
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
export OMP_NUM_THREADS=1

python3 - "$MODEL" "$CLASSES" <<'PY' || fail=1
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(json.loads(f.read(n))["__metadata__"]["basira"])
want = json.load(open(sys.argv[2]))
got = meta["classes"]
ok = ([c["code"] for c in got] == [c["code"] for c in want]
      and [c["partition"] for c in got] == [c["partition"] for c in want]
      and [c["malignant"] for c in got] == [c["malignant"] for c in want]
      and [c["names"]["fr"] for c in got] == [c["names"]["fr"] for c in want])
print(("ok   " if ok else "FAIL ") + "21 conditions with partitions and names in the model")
t = meta["thresholds"]
ok2 = 0 < t["medium"] <= t["high"] < 1 and meta["temperature"] > 0
print(("ok   " if ok2 else "FAIL ") + "calibrated thresholds and temperature", t)
sys.exit(0 if ok and ok2 else 1)
PY
sha=$(sha256sum "$MODEL" | cut -d' ' -f1)
check "the model card names the model's SHA-256" "grep -q '$sha' '$SRC/models/basira-clinical.md'"

D=${BASIRA_DATA:-}/fitzpatrick17k
if [ ! -f "$D/metadata.csv" ]; then
  echo "skipped: ../shared/data/fitzpatrick17k is absent (the rest needs real photos)"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
# One test photo of each partition.
for part in malignant benign non-neoplastic; do
  id=$(awk -F, -v p="$part" 'NR > 1 && $4 == p { print $1; exit }' "$SRC/models/basira-clinical/split-test.csv")
  LANG=fr_FR.UTF-8 "$B" triage --json --force --model "$MODEL" "$D/images/$id.jpg" >"$T/tri.json" 2>/dev/null
  python3 - "$T/tri.json" "$CLASSES" "$part" <<'PY' || fail=1
import json, sys
r = json.loads(open(sys.argv[1]).readline())
names = {c["code"]: c["names"]["fr"] for c in json.load(open(sys.argv[2]))}
p = r["partition"]
ok = (abs(sum(p.values()) - 1) < 1e-5
      and abs(p["malignant"] - r["risk"]["malignant_probability"]) < 1e-9
      and p["non-neoplastic"] > 0
      and all(c["code"] in names and c["name"] == names[c["code"]] for c in r["candidates"]))
print(("ok   " if ok else "FAIL ") + "triage of a %s test photo: partition %s, top %s"
      % (sys.argv[3], {k: round(v, 3) for k, v in p.items()}, r["candidates"][0]["code"]))
sys.exit(0 if ok else 1)
PY
done

# The recipe's steps, bounded: dedup, prepare, train (stratified, from the dermoscopy model).
head -61 "$D/metadata.csv" >"$T/meta.csv"
"$B" dedup --images "$D/images" --csv "$T/meta.csv" --image-col md5hash --out "$T/dups.csv" >/dev/null; rc=$?
check "dedup of 60 photos" "[ $rc -eq 0 ]"
python3 "$SRC/models/basira-clinical/prepare.py" "$T/meta.csv" "$T/dups.csv" "$T/grouped.csv"; rc=$?
check "prepare.py joins groups and strata" "[ $rc -eq 0 ] && head -1 '$T/grouped.csv' | grep -q 'dup_group,phototype_group,stratum'"
"$B" train --images "$D/images" --csv "$T/grouped.csv" --image-col md5hash --label-col label \
  --group-col dup_group --stratify-col stratum --classes "$CLASSES" \
  --init-from "$SRC/models/basira-derm.safetensors" --input-size 128 --epochs 1 --batch 16 \
  --ema 0.99 --augment dermoscopy --select-metric auc --split 0.6,0.2,0.2 --threads 1 --quiet \
  --out "$T/run" >"$T/train.out" 2>&1; rc=$?
check "one epoch of the recipe trains" "[ $rc -eq 0 ] && [ -s '$T/run/best.safetensors' ]"
"$B" train --images "$D/images" --csv "$T/grouped.csv" --image-col md5hash --label-col label \
  --classes "$CLASSES" --init-from "$SRC/models/basira-derm.safetensors" --input-size 112 \
  --epochs 1 --quiet --out "$T/run2" >"$T/train2.out" 2>&1; rc=$?
# At another input size than the parent's, the network is fine-tuned at that size.
check "--init-from at another input size trains at that size" \
  "[ $rc -eq 0 ] && python3 -c 'import json,struct,sys; f=open(\"$T/run2/best.safetensors\",\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0]; m=json.loads(f.read(n))[\"__metadata__\"]; sys.exit(json.loads(m[\"architecture\"])[\"input\"]!=[3,112,112])'"
exit $fail
