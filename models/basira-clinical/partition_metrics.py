#!/usr/bin/env python3
"""Three-partition figures of basira-clinical on a labelled set, from `basira classify --json`.

The model predicts the 21 Fitzpatrick17k conditions; the probability of a partition
(malignant, benign, non-neoplastic) is the sum over its conditions, as `basira triage`
reports it in "partition". Prints JSON: overall and per phototype group (I-II, III-IV,
V-VI), n; three-class accuracy and balanced accuracy (bootstrap 95% interval, 1,000
replicates); malignant-vs-rest AUC with DeLong's 95% interval; sensitivity (P(malignant)
>= the medium threshold: high + medium) and specificity with Wilson intervals; the
specificity at 90% sensitivity (the threshold taken on this set, as the issue's floor);
and what a "confident non-neoplastic" rule (P(non-neoplastic) >= t, P(malignant) under
the medium threshold) would route to primary care at several t.

With --parent PARENT.jsonl (`basira classify --json` of the dermoscopy model on the same
photos; its P(malignant) = akiec + bcc + mel): the paired DeLong test of the two
malignant-vs-rest AUCs on the same cases, overall and per phototype group.

Usage: partition_metrics.py CLASSES.json TEST.csv PROBS.jsonl --thresholds MODEL.safetensors
                            [--parent PARENT.jsonl]
"""
import csv
import json
import math
import os
import random
import struct
import sys

PARTS = ["malignant", "benign", "non-neoplastic"]


def model_thresholds(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = json.loads(header["__metadata__"]["basira"])
    return meta["thresholds"]["medium"], meta["thresholds"]["high"]


def wilson(k, n, z=1.959964):
    if n == 0:
        return [None, None, None]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [p, max(0.0, c - h), min(1.0, c + h)]


def delong(pos, neg):
    """AUC and DeLong's 95% interval (Sun & Xu's variance, ties counted half)."""
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return [None, None, None]

    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    v10 = [sum(psi(x, y) for y in neg) / n for x in pos]
    v01 = [sum(psi(x, y) for x in pos) / m for y in neg]
    auc = sum(v10) / m
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    se = math.sqrt(s10 / m + s01 / n)
    return [auc, max(0.0, auc - 1.959964 * se), min(1.0, auc + 1.959964 * se)]


def delong_paired(rows):
    """Paired DeLong test (DeLong et al. 1988) of AUC(model) - AUC(parent) on the same cases."""
    pos = [r for r in rows if r["truth"] == "malignant"]
    neg = [r for r in rows if r["truth"] != "malignant"]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return None

    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    v10, v01, auc = [], [], []
    for key in ("pmal", "pmal_parent"):
        a = [sum(psi(x[key], y[key]) for y in neg) / n for x in pos]
        b = [sum(psi(x[key], y[key]) for x in pos) / m for y in neg]
        v10.append(a)
        v01.append(b)
        auc.append(sum(a) / m)

    def cov(u, v, mu, mv):
        return sum((a - mu) * (b - mv) for a, b in zip(u, v)) / (len(u) - 1)

    s10 = [[cov(v10[i], v10[j], auc[i], auc[j]) for j in range(2)] for i in range(2)]
    s01 = [[cov(v01[i], v01[j], auc[i], auc[j]) for j in range(2)] for i in range(2)]
    var = (s10[0][0] + s10[1][1] - 2 * s10[0][1]) / m + (s01[0][0] + s01[1][1] - 2 * s01[0][1]) / n
    d = auc[0] - auc[1]
    se = math.sqrt(max(var, 0.0))
    z = d / se if se > 0 else float("inf")
    p = math.erfc(abs(z) / math.sqrt(2))
    return {"auc_model": auc[0], "auc_parent": auc[1], "difference": d,
            "ci95": [d - 1.959964 * se, d + 1.959964 * se], "z": z, "p": p}


def balanced_accuracy(rows):
    rec = []
    for p in PARTS:
        sel = [r for r in rows if r["truth"] == p]
        if sel:
            rec.append(sum(r["pred"] == p for r in sel) / len(sel))
    return sum(rec) / len(rec) if rec else None


def spec_at_sens(rows, target=0.90):
    mal = sorted((r["pmal"] for r in rows if r["truth"] == "malignant"), reverse=True)
    if not mal:
        return None
    k = math.ceil(target * len(mal))
    thr = mal[k - 1]
    ben = [r["pmal"] for r in rows if r["truth"] != "malignant"]
    return sum(p < thr for p in ben) / len(ben) if ben else None


def figures(rows, medium, rng):
    out = {"n": len(rows), "n_malignant": sum(r["truth"] == "malignant" for r in rows)}
    acc = sum(r["pred"] == r["truth"] for r in rows) / len(rows)
    boots_acc, boots_bal = [], []
    strata = {p: [r for r in rows if r["truth"] == p] for p in PARTS}
    for _ in range(1000):
        s = []
        for p in PARTS:
            g = strata[p]
            s += [g[rng.randrange(len(g))] for _ in g]
        boots_acc.append(sum(r["pred"] == r["truth"] for r in s) / len(s))
        boots_bal.append(balanced_accuracy(s))
    boots_acc.sort()
    boots_bal.sort()
    out["accuracy_3class"] = [acc, boots_acc[24], boots_acc[974]]
    out["balanced_accuracy_3class"] = [balanced_accuracy(rows), boots_bal[24], boots_bal[974]]
    out["recall_3class"] = {
        p: (sum(r["pred"] == p for r in strata[p]) / len(strata[p]) if strata[p] else None)
        for p in PARTS
    }
    pos = [r["pmal"] for r in rows if r["truth"] == "malignant"]
    neg = [r["pmal"] for r in rows if r["truth"] != "malignant"]
    out["auc_malignant"] = delong(pos, neg)
    out["sensitivity"] = wilson(sum(p >= medium for p in pos), len(pos))
    out["specificity"] = wilson(sum(p < medium for p in neg), len(neg))
    out["specificity_at_90_sensitivity"] = spec_at_sens(rows)
    return out


def read_probs(path):
    probs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            probs[os.path.splitext(os.path.basename(j["file"]))[0]] = j["probabilities"]
    return probs


def main(argv):
    parent_path = None
    if len(argv) == 8 and argv[6] == "--parent":
        parent_path = argv[7]
        argv = argv[:6]
    if len(argv) != 6 or argv[4] != "--thresholds":
        sys.exit(__doc__)
    classes_path, csv_path, probs_path, model_path = argv[1], argv[2], argv[3], argv[5]
    with open(classes_path, encoding="utf-8") as f:
        part_of = {c["code"]: c["partition"] for c in json.load(f)}
    medium, high = model_thresholds(model_path)
    probs = read_probs(probs_path)
    parent = read_probs(parent_path) if parent_path else None
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            p = probs.get(r["md5hash"])
            if p is None:
                sys.exit("partition_metrics.py: no probabilities for " + r["md5hash"])
            part = {k: 0.0 for k in PARTS}
            for code, v in p.items():
                part[part_of[code]] += v
            rows.append({"truth": r["three_partition_label"], "group": r["phototype_group"],
                         "pmal": part["malignant"], "pnon": part["non-neoplastic"],
                         "pred": max(PARTS, key=lambda k: part[k])})
            if parent is not None:
                q = parent.get(r["md5hash"])
                if q is None:
                    sys.exit("partition_metrics.py: no parent probabilities for " + r["md5hash"])
                rows[-1]["pmal_parent"] = q["akiec"] + q["bcc"] + q["mel"]
    rng = random.Random(20261122)
    out = {"thresholds": {"medium": medium, "high": high}, "overall": figures(rows, medium, rng),
           "by_phototype_group": {}}
    for g in ["I-II", "III-IV", "V-VI", "unknown"]:
        sel = [r for r in rows if r["group"] == g]
        if sel:
            out["by_phototype_group"][g] = figures(sel, medium, rng)
    # The "confident non-neoplastic" rule: P(non-neoplastic) >= t while P(malignant) stays
    # under the medium threshold. What each t would send to primary-care management.
    rule = []
    for t in [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]:
        sel = [r for r in rows if r["pnon"] >= t and r["pmal"] < medium]
        rule.append({"p_non_neoplastic_at_least": t, "n": len(sel),
                     "share_of_all": len(sel) / len(rows),
                     "truly_non_neoplastic": wilson(sum(r["truth"] == "non-neoplastic" for r in sel),
                                                    len(sel)),
                     "malignant_among_them": sum(r["truth"] == "malignant" for r in sel)})
    out["non_neoplastic_rule"] = rule
    if parent is not None:
        out["vs_parent"] = {"overall": delong_paired(rows)}
        for g in ["I-II", "III-IV", "V-VI"]:
            out["vs_parent"][g] = delong_paired([r for r in rows if r["group"] == g])
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv)
