#!/usr/bin/env bash
# The exact recipe of models/basira-cxr-pneumonia.safetensors (see models/basira-cxr-pneumonia.md).
# Run from the repository root, with ../shared/data present and a release build:
#   scripts/build.sh release build-release && models/basira-cxr-pneumonia/train.sh [select|final]
# "select" trains the two candidate recipes (augmentation light vs none; "none" is stopped after
# 7 of its 20 epochs to keep the CPU budget, see the model card); "final" trains the chosen one
# if needed, calibrates it on the validation part of the pool and evaluates it once on the
# held-out images (PneumoniaMNIST's own "val" split, never used before).
set -euo pipefail
B=${BASIRA:-./build-release/src/cli/basira}
D=${BASIRA_DATA:-../shared/data}/pneumoniamnist
R=runs/cxr
mkdir -p "$R"
# labels.csv (CRLF) -> pool.csv (the 4,708 "train" images) and heldout.csv (the 524 "val" images).
tr -d '\r' < "$D/labels.csv" | awk -F, -v pool="$R/pool.csv" -v held="$R/heldout.csv" '
  BEGIN { OFS = ","; print "file,label" > pool; print "file,label" > held }
  NR > 1 { l = $3 == 1 ? "pneumonia" : "normal"; if ($2 == "train") print $1, l > pool; else print $1, l > held }'
train() { # $1 augment, $2 out dir, $3 version, then extra options
  nice -n 15 "$B" train --images "$D/images" --csv "$R/pool.csv" --image-col file --label-col label \
    --classes models/basira-cxr-pneumonia/classes.json \
    --arch resnet --width 16 --depth 2 --input-size 56 --dropout 0.2 --colour-constancy none \
    --epochs 20 --batch 64 --lr 0.002 --optimizer adamw --weight-decay 0.05 --schedule onecycle \
    --warmup-epochs 1 --label-smoothing 0 --class-weights balanced --sampler uniform --ema 0 \
    --augment "$1" --select-metric auc --split 0.85,0.15,0 --seed 1 --threads 2 --quiet \
    --name basira-cxr-pneumonia --model-version "$3" --out "$2" "${@:4}"
}
case "${1:-final}" in
select)
  train light "$R/light" 1.0.0
  train none "$R/none" 1.0.0 --stop-after 7
  ;;
final)
  AUG=${AUG:-light}
  [ -f "$R/$AUG/best.safetensors" ] || train "$AUG" "$R/$AUG" 1.0.0
  "$B" calibrate --model "$R/$AUG/best.safetensors" --images "$D/images" --csv "$R/$AUG/val.csv" \
    --image-col file --label-col label --out models/basira-cxr-pneumonia.safetensors \
    --json models/basira-cxr-pneumonia/calibration-val.json
  "$B" evaluate --model models/basira-cxr-pneumonia.safetensors --images "$D/images" \
    --csv "$R/heldout.csv" --image-col file --label-col label \
    --json models/basira-cxr-pneumonia/evaluation-heldout.json \
    --report models/basira-cxr-pneumonia/evaluation-heldout.md
  ;;
esac
