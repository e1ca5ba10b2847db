#!/usr/bin/env bash
# The exact recipe of models/basira-derm.safetensors (see models/MODEL_CARD.md).
# Run from the repository root, with ../shared/data present and a release build:
#   scripts/build.sh release build-release && models/basira-derm/train.sh
# About 45 minutes on 2 cores. Produces runs/derm-v1/ and then models/basira-derm.safetensors.
set -euo pipefail
B=${BASIRA:-./build-release/src/cli/basira}
D=${BASIRA_DATA:-../shared/data}/ham10000
"$B" train --images "$D/images" --csv "$D/metadata.csv" \
  --image-col image_id --label-col dx --group-col lesion_id --classes models/ham10000-classes.json \
  --arch resnet --width 16 --depth 2 --input-size 128 --dropout 0.2 --colour-constancy shades_of_gray \
  --epochs 80 --batch 64 --lr 0.002 --optimizer adamw --weight-decay 0.05 --schedule onecycle --warmup-epochs 2 \
  --label-smoothing 0 --class-weights sqrt --sampler uniform --ema 0.999 --augment dermoscopy \
  --select-metric balanced_accuracy --split 0.70,0.15,0.15 --seed 1 --threads 2 \
  --name basira-derm --model-version 1.0.0 --out runs/derm-v1
"$B" calibrate --conservative --model runs/derm-v1/best.safetensors --images "$D/images" \
  --csv runs/derm-v1/val.csv --out models/basira-derm.safetensors --json models/basira-derm/calibration-val.json
"$B" evaluate --model models/basira-derm.safetensors --images "$D/images" --csv runs/derm-v1/test.csv \
  --group-col lesion_id --by sex,age,localization,skin_tone \
  --json models/basira-derm/evaluation-test.json --report models/basira-derm/evaluation-test.md \
  --reliability models/basira-derm/reliability-test.svg
