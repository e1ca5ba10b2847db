#!/usr/bin/env python3
"""Paired comparison of two dermoscopy models on the same held-out lesions (issue 12).

  basira classify --model A --json IMG... > a.jsonl   (same for B)
  /usr/bin/python3 models/basira-derm/compare.py --csv test.csv --classes models/ham10000-classes.json \
      --a a.jsonl --b b.jsonl --medium TA,TB [--names bundled,new] [--boot 1000] [--json out.json]

Per model: accuracy, balanced accuracy, mean one-vs-rest AUC, malignant AUC, sensitivity and
specificity at the model's shipped medium threshold, and the specificity at >= 95% sensitivity
(the largest threshold on P(malignant) that keeps >= 95% of the malignant images: a property of
the ranking, fitted on these images, so optimistic as an operating point). Differences B - A with
95% percentile intervals from a paired bootstrap that resamples lesions (--group-col), so the
images of one lesion stay together.
"""
import argparse
import csv
import json
import math
import sys

import numpy as np


def load_probs(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            name = r["file"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
            out[name] = r["probabilities"]
    return out


def auc(score, pos):
    """Mann-Whitney AUC with mid-ranks; pos is a boolean array."""
    n1 = int(pos.sum())
    n0 = len(pos) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return (r[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def spec_at_sens(pm, mal, target):
    m = np.sort(pm[mal])[::-1]
    need = math.ceil(target * len(m))
    if need == 0:
        return float("nan")
    t = m[need - 1]  # largest threshold keeping `need` malignant images at or above it
    return float((pm[~mal] < t).mean())


def figures(P, y, malflag, thr_medium):
    k = P.shape[1]
    pred = P.argmax(1)
    rec = [float((pred[y == c] == c).mean()) for c in range(k) if (y == c).any()]
    pm = P[:, malflag].sum(1)
    mal = malflag[y]
    aucs = [auc(P[:, c], y == c) for c in range(k) if (y == c).any() and (y != c).any()]
    return {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(np.mean(rec)),
        "auc_mean_ovr": float(np.mean(aucs)),
        "auc_malignant": float(auc(pm, mal)),
        "sensitivity_shipped": float((pm[mal] >= thr_medium).mean()),
        "specificity_shipped": float((pm[~mal] < thr_medium).mean()),
        "specificity_at_95_sensitivity": spec_at_sens(pm, mal, 0.95),
        "mel_recall": None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--classes", required=True)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--names", default="A,B")
    ap.add_argument("--medium", required=True,
                    help="medium thresholds of A and B, e.g. 0.058068,0.07 (classify --json gives high only)")
    ap.add_argument("--label-col", default="dx")
    ap.add_argument("--image-col", default="image_id")
    ap.add_argument("--group-col", default="lesion_id")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--json")
    a = ap.parse_args()
    classes = json.load(open(a.classes))
    classes = classes["classes"] if isinstance(classes, dict) else classes
    codes = [c["code"] for c in classes]
    malflag = np.array([bool(c.get("malignant")) for c in classes])
    rows = list(csv.DictReader(open(a.csv, newline="")))
    pa, pb = load_probs(a.a), load_probs(a.b)
    names = a.names.split(",")
    y, groups, PA, PB = [], [], [], []
    for r in rows:
        img = r[a.image_col]
        if img not in pa or img not in pb:
            sys.exit(f"compare.py: {img} is missing from a model's predictions")
        y.append(codes.index(r[a.label_col]))
        groups.append(r[a.group_col])
        PA.append([pa[img][c] for c in codes])
        PB.append([pb[img][c] for c in codes])
    y = np.array(y)
    PA, PB = np.array(PA), np.array(PB)
    return run(a, names, codes, malflag, y, groups, PA, PB)


def run(a, names, codes, malflag, y, groups, PA, PB):
    thr = [float(t) for t in a.medium.split(",")]
    fa = figures(PA, y, malflag, thr[0])
    fb = figures(PB, y, malflag, thr[1])
    mel = codes.index("mel") if "mel" in codes else None
    if mel is not None:
        fa["mel_recall"] = float((PA[y == mel].argmax(1) == mel).mean())
        fb["mel_recall"] = float((PB[y == mel].argmax(1) == mel).mean())
    ug, gi = np.unique(np.array(groups), return_inverse=True)
    members = [np.flatnonzero(gi == g) for g in range(len(ug))]
    rng = np.random.default_rng(a.seed)
    keys = [k for k in fa if fa[k] is not None]
    boots = {k: [] for k in keys}
    for _ in range(a.boot):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[g] for g in pick])
        ba = figures(PA[idx], y[idx], malflag, thr[0])
        bb = figures(PB[idx], y[idx], malflag, thr[1])
        for k in keys:
            if k == "mel_recall":
                m = y[idx] == mel
                ba[k] = float((PA[idx][m].argmax(1) == mel).mean())
                bb[k] = float((PB[idx][m].argmax(1) == mel).mean())
            boots[k].append((ba[k], bb[k]))
    out = {"n_images": int(len(y)), "n_lesions": int(len(ug)), "bootstrap": a.boot,
           "resampling": "lesions (paired)", "models": names, "metrics": {}}
    print(f"n = {len(y)} images, {len(ug)} lesions; paired bootstrap over lesions ({a.boot})")
    print(f"| metric | {names[0]} | {names[1]} | {names[1]} - {names[0]} [95% CI] |")
    print("|---|---|---|---|")
    for k in keys:
        arr = np.array(boots[k])
        lo_a, hi_a = np.nanpercentile(arr[:, 0], [2.5, 97.5])
        lo_b, hi_b = np.nanpercentile(arr[:, 1], [2.5, 97.5])
        d = arr[:, 1] - arr[:, 0]
        lo_d, hi_d = np.nanpercentile(d, [2.5, 97.5])
        out["metrics"][k] = {
            names[0]: {"value": fa[k], "lo": lo_a, "hi": hi_a},
            names[1]: {"value": fb[k], "lo": lo_b, "hi": hi_b},
            "difference": {"value": fb[k] - fa[k], "lo": lo_d, "hi": hi_d,
                           "share_of_replicates_above_0": float((d > 0).mean())},
        }
        print(f"| {k} | {fa[k]:.3f} [{lo_a:.3f}, {hi_a:.3f}] | {fb[k]:.3f} [{lo_b:.3f}, {hi_b:.3f}] "
              f"| {fb[k] - fa[k]:+.3f} [{lo_d:+.3f}, {hi_d:+.3f}] |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
