#!/usr/bin/env bash
# Candidate lever for basira-clinical (issue 11), written 2026-12-07 (session 18): self-
# supervised pretraining (SimCLR, `basira train --contrastive`) of the clinical recipe's parent
# on the training photos of both data sets, labels unused, then the recipe's fine-tuning from
# it. Judged on validation by the rule below (basira-clinical.md, *Session 18*): NOT kept
# (seed 1 0.871, seed 2 0.860 at 8 views; the rule asks 0.868 of both).
# Run from the repository root, with ../shared/data and a release build:
#   models/basira-clinical/candidate-ssl.sh            # STEPS="data ssl finetune judge"
# Steps:
#   data      the table: HAM10000's dermoscopy training lesions (models/basira-derm/split-train.csv,
#             4,947 photos) and Fitzpatrick17k's clinical training groups (split-train.csv,
#             2,003), part "train"; the 430 clinical validation photos, part "val" (its
#             contrastive loss picks the epoch). No test photo of either set is used.
#   ssl       12 epochs, batch 128 (64 photos, 2 views), temperature 0.2, a 64-output head,
#             --augment shift (wide crops, blur, JPEG, colour casts), from basira-derm 1.2.0's
#             first network (train.sh's PARENT); about 40 minutes on 2 AVX2 cores
#   finetune  train.sh step 2's exact command, --init-from the SSL model (its head replaced by
#             the 21 conditions), seeds 1 and 2 side by side on one thread each (~30 minutes)
#   judge     each network alone on the validation photos at 8 views (basira evaluate --tta 8)
# The rule, fixed before any fine-tuned network existed: the lever is worth an ensemble only if
# both networks reach a validation AUC >= 0.868 (1.2.0's four seeds, measured the same way:
# 0.862, 0.857, 0.870, 0.855, mean 0.861, sd 0.007; the method reproduces 1.1.0's 0.861).
set -euo pipefail
B=${BASIRA:-./build-release/src/cli/basira}
DATA=${BASIRA_DATA:-../shared/data}
R=${RUN_DIR:-runs/clinical-ssl}
M=models/basira-clinical
STEPS=${STEPS:-data ssl finetune judge}
SEEDS=${SEEDS:-1 2}
PARENT=${PARENT:-$R/basira-derm-1.2.0.safetensors}
PARENT_SHA=ae8adba8d9083be5b970d3c9bb681d9ec2e1aba7283e89e8a5013e20633935c2
mkdir -p "$R"
[ -f "$PARENT" ] || git show 9d9b4cd:models/basira-derm.safetensors >"$PARENT"
echo "$PARENT_SHA  $PARENT" | sha256sum -c --quiet - ||
  { echo "candidate-ssl.sh: $PARENT is not basira-derm 1.2.0" >&2; exit 1; }
has() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }

if has data; then
  {
    echo image,kind,group,part
    tail -n +2 models/basira-derm/split-train.csv |
      awk -F, '{ print "ham10000/images/" $2 ".jpg,dermoscopic," $1 ",train" }'
    for p in train val; do
      tail -n +2 $M/split-$p.csv |
        awk -F, -v p=$p '{ print "fitzpatrick17k/images/" $1 ".jpg,clinical," $5 "," p }'
    done
  } >"$R/ssl.csv"
  awk -F, -v OFS=, 'FNR == 1 { if (NR == 1) print $0, "part"; next }
    { print $0, (FILENAME ~ /split-train/ ? "train" : FILENAME ~ /split-val/ ? "val" : "test") }' \
    $M/split-train.csv $M/split-val.csv $M/split-test.csv >"$R/f17k-split.csv"
fi

if has ssl; then
  OMP_NUM_THREADS=2 nice -n 10 "$B" train --images "$DATA" --csv "$R/ssl.csv" --image-col image \
    --label-col kind --group-col group --split-col part --classes models/modality-classes.json \
    --init-from "$PARENT" --input-size 128 --colour-constancy shades_of_gray \
    --contrastive 0.2 --proj-dim 64 --epochs 12 --batch 128 --lr 0.001 --optimizer adamw \
    --weight-decay 0.05 --schedule onecycle --warmup-epochs 1 --class-weights none \
    --augment shift --seed 1 --threads 2 --quiet --name basira-ssl --model-version 0.1.0 \
    --out "$R/ssl"
fi

if has finetune; then
  pids=()
  for seed in $SEEDS; do
    OMP_NUM_THREADS=1 nice -n 10 "$B" train --images "$DATA/fitzpatrick17k/images" \
      --csv "$R/f17k-split.csv" --split-col part \
      --image-col md5hash --label-col label --group-col dup_group \
      --classes models/fitzpatrick17k-condition-classes.json \
      --init-from "$R/ssl/best.safetensors" --input-size 128 --colour-constancy shades_of_gray \
      --epochs 40 --batch 64 --lr 0.002 --optimizer adamw --weight-decay 0.05 --schedule onecycle \
      --warmup-epochs 1 --label-smoothing 0.1 --class-weights sqrt --sampler uniform --ema 0.99 \
      --augment dermoscopy --select-metric auc --split 0.70,0.15,0.15 --seed "$seed" --split-seed 1 \
      --threads 1 --quiet --name basira-clinical --model-version 1.3.0-ssl --out "$R/ft-seed$seed" \
      >"$R/ft-seed$seed.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
fi

if has judge; then
  for seed in $SEEDS; do
    "$B" evaluate --model "$R/ft-seed$seed/best.safetensors" \
      --images "$DATA/fitzpatrick17k/images" --csv $M/split-val.csv --label-col label \
      --image-col md5hash --tta 8 --threads 2 --json "$R/ft-seed$seed-val8.json" >/dev/null
    python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['image_level'];
print('seed $seed: validation AUC (8 views) %.4f, balanced accuracy %.3f' %
      (d['auc_malignant']['value'], d['balanced_accuracy']['value']))" "$R/ft-seed$seed-val8.json"
  done
fi
