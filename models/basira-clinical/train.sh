#!/usr/bin/env bash
# The exact recipe of models/basira-clinical.safetensors (see models/basira-clinical.md).
# Run from the repository root, with ../shared/data present and a release build:
#   scripts/build.sh release build-release && models/basira-clinical/train.sh
# Steps: near-duplicate groups, split by group stratified by phototype and partition, train
# (21 conditions, initialised from the dermoscopy model) once per seed on the same split, join
# the networks into one ensemble, calibrate on validation, evaluate and certify on the test
# groups only. Writes runs/clinical/ and models/basira-clinical*.
set -euo pipefail
B=${BASIRA:-./build-release/src/cli/basira}
D=${BASIRA_DATA:-../shared/data}/fitzpatrick17k
R=${RUN_DIR:-runs/clinical}
M=models/basira-clinical
TARGET_SENSITIVITY=${TARGET_SENSITIVITY:-0.90}
FROM_STEP=${FROM_STEP:-1} # 3: calibrate, evaluate and certify an existing $R/train
TTA=${TTA:-2}             # views averaged per photo: 8 in 1.1.1 and 1.2.0; 2 since 1.2.1 (4
                          # networks: validation AUC 0.871 at 2 and at 8 views, a quarter of the cost)
# 1.2.0: the networks of seeds 1..4, averaged (an ensemble, `basira ensemble`). Seed 1 is
# 1.1.0's network (trained with --threads 1; the others with 2: the same seed and threads
# give the same numbers). SEEDS=1 gives the single network of 1.1.x.
SEEDS=${SEEDS:-1 2 3 4}
BIAS=${BIAS:-0}           # 1: also fit a bias on the log-odds of P(malignant). Tried for
                          # 1.1.1 and not kept: validation ECE of P(malignant) 0.080 -> 0.049,
                          # but validation three-class balanced accuracy 0.645 -> 0.624
VERSION=${VERSION:-1.2.2}
# The weights as stored: f16 since 1.2.2 (half the bytes to read and hash on every cold
# triage of a clinical photo; 1.2.1 was f32). Inference runs in fp32 either way.
STORAGE=${STORAGE:-f16}
SLOPE=${SLOPE:-0}         # 1: calibrate --malignant-slope (Platt scaling of P(malignant)).
                          # Measured for 1.2.1 and not kept (basira-clinical.md)
# The split: the shipped one, from $M/split-*.csv (train --split-col), so that a new network
# joins the ensemble on the same groups. NEW_SPLIT=1 draws it again from the groups of
# `basira dedup` (seed 1), as for 1.0.0 to 1.2.1; dedup's groups have changed since (2,640
# groups against the split's 2,644), so that split is not the shipped one any more.
NEW_SPLIT=${NEW_SPLIT:-0}
# The model to calibrate: the ensemble of step 2b (one seed: its network). 1.1.1 was 1.1.0's
# network recalibrated with 8 views: CALIBRATE_FROM=<a copy of 1.1.0's file> FROM_STEP=3.
CALIBRATE_FROM=${CALIBRATE_FROM:-$R/ensemble.safetensors}
mkdir -p "$R"
# The network the clinical networks start from: basira-derm 1.2.0's first network, 1.0.0's
# (128x128). It is taken from git by its hash, not from models/basira-derm.safetensors, so that
# a newer dermoscopy model (1.3.0: 160x120 networks) does not change this recipe.
PARENT=${PARENT:-$R/basira-derm-1.2.0.safetensors}
PARENT_SHA=ae8adba8d9083be5b970d3c9bb681d9ec2e1aba7283e89e8a5013e20633935c2
[ -f "$PARENT" ] || git show 9d9b4cd:models/basira-derm.safetensors >"$PARENT"
echo "$PARENT_SHA  $PARENT" | sha256sum -c --quiet - ||
  { echo "train.sh: $PARENT is not basira-derm 1.2.0 (PARENT=FILE to give it)" >&2; exit 1; }
export OMP_NUM_THREADS=2

if [ "$FROM_STEP" -le 2 ]; then
# 1. Near-duplicate groups (difference hash, distance <= 6), joined to the table with the
#    phototype group and the stratum (phototype group / partition) of every photo.
"$B" dedup --images "$D/images" --csv "$D/metadata.csv" --image-col md5hash --out "$R/dups.csv"
python3 $M/prepare.py "$D/metadata.csv" "$R/dups.csv" "$R/f17k-grouped.csv"

if [ "$NEW_SPLIT" = 1 ]; then
  DATA=(--csv "$R/f17k-grouped.csv" --stratify-col stratum)
else
  awk -F, -v OFS=, 'FNR == 1 { if (NR == 1) print $0, "part"; next }
    { print $0, (FILENAME ~ /split-train/ ? "train" : FILENAME ~ /split-val/ ? "val" : "test") }' \
    $M/split-train.csv $M/split-val.csv $M/split-test.csv >"$R/f17k-split.csv"
  DATA=(--csv "$R/f17k-split.csv" --split-col part)
fi

# 2. Train: 21 conditions (the partitions are sums of them), split 70/15/15 by near-duplicate
#    group, stratified by phototype group and partition (the split of seed 1 for every seed:
#    --split-seed 1); the best epoch on validation AUC. About 11 minutes per seed on 2 cores.
# --init-from basira-derm 1.2.0 ($PARENT): its first network, 1.0.0's (1.2.0 holds two).
for seed in $SEEDS; do
  out="$R/train"; threads=1
  [ "$seed" = 1 ] || { out="$R/train-seed$seed"; threads=2; }
  nice -n 19 "$B" train --images "$D/images" "${DATA[@]}" \
    --image-col md5hash --label-col label --group-col dup_group \
    --classes models/fitzpatrick17k-condition-classes.json \
    --init-from "$PARENT" --input-size 128 --colour-constancy shades_of_gray \
    --epochs 40 --batch 64 --lr 0.002 --optimizer adamw --weight-decay 0.05 --schedule onecycle \
    --warmup-epochs 1 --label-smoothing 0.1 --class-weights sqrt --sampler uniform --ema 0.99 \
    --augment dermoscopy --select-metric auc --split 0.70,0.15,0.15 --seed "$seed" --split-seed 1 \
    --threads $threads --name basira-clinical --model-version "$VERSION" --out "$out"
done
fi
# 2b. One model file averaging the seeds' networks (not fitted yet: step 3 calibrates it).
members=()
for seed in $SEEDS; do
  if [ "$seed" = 1 ]; then members+=("$R/train/best.safetensors"); else members+=("$R/train-seed$seed/best.safetensors"); fi
done
if [ "${#members[@]}" -gt 1 ]; then
  [ "$CALIBRATE_FROM" != "$R/ensemble.safetensors" ] ||
    "$B" ensemble --out "$R/ensemble.safetensors" --model-version "$VERSION" "${members[@]}"
elif [ "$CALIBRATE_FROM" = "$R/ensemble.safetensors" ]; then
  CALIBRATE_FROM=${members[0]}
fi
[ ! -f "$R/train/history.jsonl" ] || cp "$R/train/history.jsonl" $M/history-train.jsonl
[ "$NEW_SPLIT" != 1 ] ||
  for p in train val test; do cut -d, -f1,2,4,6,9,10 "$R/train/$p.csv" >"$M/split-$p.csv"; done

# 3. Calibrate on the validation groups only: temperature, then the triage thresholds; the
#    class list stored with the partitions of the 21 conditions (--classes).
#    --non-neoplastic: the primary-care rule's threshold, the lowest of 0.5..0.99 under which no
#    validation photo sent to primary care was malignant (partition-val.json, run once first
#    without it; models/basira-clinical.md).
"$B" calibrate --conservative --target-sensitivity "$TARGET_SENSITIVITY" \
  --non-neoplastic "${NON_NEOPLASTIC:-0.95}" \
  --model "$CALIBRATE_FROM" --images "$D/images" --csv "$R/train/val.csv" \
  --label-col label --image-col md5hash --threads 2 --tta "$TTA" --model-version "$VERSION" \
  --storage "$STORAGE" \
  $([ "$BIAS" = 1 ] && echo --malignant-bias) \
  $([ "$SLOPE" = 1 ] && echo --malignant-slope) \
  --classes models/fitzpatrick17k-condition-classes.json \
  --out models/basira-clinical.safetensors --json $M/calibration-val.json

# 4. Evaluate and certify on the test groups, never used for training, calibration or
#    selection. (certify --parent needs a parent that knows the labels: the dermoscopy
#    model's classes differ, so the paired comparison is made in step 5.)
"$B" evaluate --model models/basira-clinical.safetensors --images "$D/images" \
  --csv "$R/train/test.csv" --label-col label --image-col md5hash \
  --by phototype_group,fitzpatrick_scale,three_partition_label --threads 2 \
  --json $M/evaluation-test.json --report $M/evaluation-test.md \
  --reliability $M/reliability-test.svg
set +e
"$B" certify --model models/basira-clinical.safetensors \
  --images "$D/images" --csv "$R/train/test.csv" --label-col label --image-col md5hash \
  --phototype-col fitzpatrick_scale --criteria $M/criteria.json --threads 2 \
  --json $M/certify-test.json --pdf "$R/certify-test.fr.pdf" --lang fr --manifest "$R/manifest.txt"
echo "certify exit status: $? (0 = every criterion passes)"
set -e

# 5. The three-partition view (sums of the conditions), per phototype group, with the
#    same calibrated probabilities `basira triage` reports.
cut -d, -f1 "$R/train/test.csv" | tail -n +2 | sed "s|^|$D/images/|; s|$|.jpg|" >"$R/test-images.txt"
xargs "$B" classify --model models/basira-clinical.safetensors --json <"$R/test-images.txt" \
  >"$R/test-probabilities.jsonl"
xargs "$B" classify --model models/basira-derm.safetensors --json <"$R/test-images.txt" \
  >"$R/test-probabilities-derm.jsonl"
python3 $M/partition_metrics.py models/fitzpatrick17k-condition-classes.json "$R/train/test.csv" \
  "$R/test-probabilities.jsonl" --thresholds models/basira-clinical.safetensors \
  --parent "$R/test-probabilities-derm.jsonl" >$M/partition-test.json
# The same on the validation groups, for the non-neoplastic rule's threshold.
cut -d, -f1 "$R/train/val.csv" | tail -n +2 | sed "s|^|$D/images/|; s|$|.jpg|" >"$R/val-images.txt"
xargs "$B" classify --model models/basira-clinical.safetensors --json <"$R/val-images.txt" \
  >"$R/val-probabilities.jsonl"
python3 $M/partition_metrics.py models/fitzpatrick17k-condition-classes.json "$R/train/val.csv" \
  "$R/val-probabilities.jsonl" --thresholds models/basira-clinical.safetensors \
  >$M/partition-val.json
