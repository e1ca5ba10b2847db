#!/usr/bin/env bash
# Issue 12: fine-tune basira-derm 1.0.0 on its own training lesions with shift augmentation
# and balanced class weights, calibrate on its validation lesions, and compare both models on its
# test lesions, which neither model saw (models/basira-derm/split-*.csv). See MODEL_CARD.md.
# Run from the repository root with ../shared/data present and a release build:
#   scripts/build.sh release build-release && models/basira-derm/finetune.sh
# Writes runs/derm-ft/ and runs/derm-ft-*.{json,md,jsonl}; it does not replace the shipped model.
# EPOCHS (default 3) and STOP_AFTER (default: all) size the run to the time available.
set -euo pipefail
B=${BASIRA:-./build-release/src/cli/basira}
D=${BASIRA_DATA:-../shared/data}/ham10000
M=models/basira-derm
mkdir -p runs
# The metadata rows of each part of the 1.0.0 split (image and lesion identifiers in $M).
/usr/bin/python3 - "$D/metadata.csv" "$M" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
for part in ("train", "val", "test"):
    ids = {r["image_id"] for r in csv.DictReader(open(f"{sys.argv[2]}/split-{part}.csv"))}
    with open(f"runs/bundled-{part}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(r for r in rows if r["image_id"] in ids)
PY
stop=()
[ -n "${STOP_AFTER:-}" ] && stop=(--stop-after "$STOP_AFTER")
nice -n 19 "$B" train --images "$D/images" --csv runs/bundled-train.csv \
  --image-col image_id --label-col dx --group-col lesion_id --classes models/ham10000-classes.json \
  --init-from models/basira-derm.safetensors \
  --arch resnet --width 16 --depth 2 --input-size 128 --dropout 0.2 --colour-constancy shades_of_gray \
  --epochs "${EPOCHS:-3}" --batch 64 --lr 0.0005 --optimizer adamw --weight-decay 0.05 --schedule cosine \
  --warmup-epochs 0.5 --label-smoothing 0 --class-weights balanced --sampler uniform --ema 0.99 \
  --augment shift --select-metric balanced_accuracy --split 0.90,0.10,0 --seed 2 --threads 2 \
  --name basira-derm --model-version 1.1.0 --out runs/derm-ft "${stop[@]}"
nice -n 19 "$B" calibrate --conservative --model runs/derm-ft/best.safetensors --images "$D/images" \
  --csv runs/bundled-val.csv --out runs/derm-ft/calibrated.safetensors --json runs/derm-ft-calibration-val.json
nice -n 19 "$B" evaluate --model runs/derm-ft/calibrated.safetensors --images "$D/images" \
  --csv runs/bundled-test.csv --group-col lesion_id --by sex,age,localization,skin_tone \
  --json runs/derm-ft-evaluation-test.json --report runs/derm-ft-evaluation-test.md
# Per-image probabilities of both models on the test lesions, and the paired comparison.
/usr/bin/python3 -c "import csv,sys; print('\n'.join(sys.argv[1]+'/'+r['image_id']+'.jpg' for r in csv.DictReader(open('runs/bundled-test.csv'))))" \
  "$D/images" > runs/test-files.txt
for m in models/basira-derm.safetensors:bundled runs/derm-ft/calibrated.safetensors:derm-ft; do
  nice -n 19 xargs -a runs/test-files.txt "$B" classify --model "${m%%:*}" --json > "runs/${m##*:}-test.jsonl"
done
med() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['thresholds']['medium'])" "$1"; }
/usr/bin/python3 $M/compare.py --csv runs/bundled-test.csv --classes models/ham10000-classes.json \
  --a runs/bundled-test.jsonl --b runs/derm-ft-test.jsonl --names bundled,derm-ft \
  --medium "$(med $M/evaluation-test.json),$(med runs/derm-ft-evaluation-test.json)" \
  --json runs/derm-ft-compare.json | tee runs/derm-ft-compare.md
