#!/usr/bin/env bash
# Candidate basira-derm 1.3.0-mixup (issue 12), written 2026-12-07 (session 15); judged in session 16
# and NOT shipped (balanced accuracy 0.585, specificity 0.651: below the rule; MODEL_CARD.md).
# The 4:3 network of candidate-4x3.sh (1.0.0's recipe, --input-size 160x120, seed 1, split
# seed 1) trained with mixup (--mixup 0.2: each step blends its images in pairs, Beta(0.2,
# 0.2)). In session 14 a --mixup 0.2 network added to basira-clinical 1.2.2's four raised
# their validation balanced accuracy by 0.013; on its own it scored within the seeds' spread. The 4:3 network without mixup failed session 13's rule on balanced
# accuracy (0.553 against 0.595) and specificity (0.620 against 0.705); one network's
# balanced accuracy moves by about 0.05 between runs, so a pass is evidence only together
# with the CV tables of the model card.
# Steps (STEPS, default "train judge"):
#   train  80 epochs on 2 threads: about 97 min on an AVX2 machine, 55 min on an AVX-512 one
#   judge  calibrate it --conservative (F16) on the validation lesions and compare it there,
#          paired, with the bundled 1.2.0 (models/basira-derm/compare.py)
#   ship   only after judge passes the rule below
# Everything else is candidate-4x3.sh's, which this runs with MIXUP=0.2.
# The rule, fixed before the network is trained (2026-12-07), the same as session 13's: ship
# it in place of 1.2.0's two square networks when, on the validation images, malignant AUC
# >= 1.2.0's - 0.005, balanced accuracy >= 1.2.0's, and specificity at its conservative
# thresholds >= 1.2.0's - 0.01 (1.2.0: 0.926, 0.595, 0.705). The test lesions are not used
# before the rule is passed.
set -euo pipefail
MIXUP=0.2 NAME=1.3.0-mixup-candidate RUNS=${RUNS:-runs/derm-v13-mixup} \
  exec "$(dirname "$0")/candidate-4x3.sh" "$@"
