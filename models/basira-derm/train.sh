#!/usr/bin/env bash
# The exact recipe of models/basira-derm.safetensors 1.2.1 (see models/MODEL_CARD.md): two
# networks of one recipe on one split (--split-seed 1), averaged, calibrated on the validation
# lesions, stored in half precision and calibrated again (1.2.1), evaluated on the test
# lesions, and the drift reference of the hub's monitor.
# Run from the repository root, with ../shared/data present and a release build:
#   scripts/build.sh release build-release && models/basira-derm/train.sh
# About 1 h 40 min on 2 cores: 80 epochs a network, 42 to 50 minutes each (network 1 is
# 1.0.0's), then a few minutes to calibrate, evaluate and build the drift reference.
# STEPS="ensemble" (or any of "1 2 ensemble") redoes only those steps, from the runs in runs/.
set -euo pipefail
B=${BASIRA:-./build-release/src/cli/basira}
D=${BASIRA_DATA:-../shared/data}/ham10000
STEPS=${STEPS:-1 2 ensemble}
step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
member() { # OUT SEED EPOCHS VERSION
  "$B" train --images "$D/images" --csv "$D/metadata.csv" \
    --image-col image_id --label-col dx --group-col lesion_id --classes models/ham10000-classes.json \
    --arch resnet --width 16 --depth 2 --input-size 128 --dropout 0.2 --colour-constancy shades_of_gray \
    --epochs "$3" --batch 64 --lr 0.002 --optimizer adamw --weight-decay 0.05 --schedule onecycle --warmup-epochs 2 \
    --label-smoothing 0 --class-weights sqrt --sampler uniform --ema 0.999 --augment dermoscopy \
    --select-metric balanced_accuracy --split 0.70,0.15,0.15 --seed "$2" --split-seed 1 --threads 2 \
    --name basira-derm --model-version "$4" --out "$1"
}
# Network 1 is member 0: `basira adapt --from` and `--init-from` (the clinical recipe) start
# from it, so it stays 1.0.0's network.
if step 1; then member runs/derm-v1 1 80 1.0.0; fi
if step 2; then member runs/derm-v1-seed2 2 80 1.2.0; fi
if step ensemble; then
  "$B" ensemble --out runs/derm-v1/ensemble.safetensors --model-version 1.2.0 \
    runs/derm-v1/best.safetensors runs/derm-v1-seed2/best.safetensors
  "$B" calibrate --conservative --threads 2 --model runs/derm-v1/ensemble.safetensors \
    --images "$D/images" --csv runs/derm-v1/val.csv --out runs/derm-v1/calibrated-1.2.0.safetensors
  # 1.2.1: 1.2.0's file stored in half precision, its temperature and thresholds fitted again
  # with the rounded weights, on the same validation lesions.
  "$B" calibrate --conservative --threads 1 --storage f16 --model-version 1.2.1 \
    --model runs/derm-v1/calibrated-1.2.0.safetensors \
    --images "$D/images" --csv runs/derm-v1/val.csv --out models/basira-derm.safetensors \
    --json models/basira-derm/calibration-val.json
  "$B" evaluate --model models/basira-derm.safetensors --images "$D/images" --csv runs/derm-v1/test.csv \
    --group-col lesion_id --by sex,age,localization,skin_tone \
    --json models/basira-derm/evaluation-test.json --report models/basira-derm/evaluation-test.md \
    --reliability models/basira-derm/reliability-test.svg
  "$B" hub monitor-reference --model models/basira-derm.safetensors \
    --csv models/basira-derm/split-val.csv --images "$D/images" \
    --metadata "$D/metadata.csv" --out models/basira-derm/drift-reference.json
fi
