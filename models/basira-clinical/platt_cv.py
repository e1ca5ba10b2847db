#!/usr/bin/python3
"""Out-of-fold comparison of P(malignant) recalibration maps on the validation groups
(models/basira-clinical.md, session 11): none, a bias, Platt scaling (slope and bias), each
fitted on 4 of 5 folds by near-duplicate group and scored on the fifth, 20 repeats.

    platt_cv.py VAL.jsonl [WRITTEN.jsonl]

VAL.jsonl: `basira classify --json` of the validation photos with the shipped model
(run from the repository root); WRITTEN.jsonl: the same with a recalibrated copy, scored
in sample."""
import json, sys, csv, math, random
import numpy as np
cls = json.load(open('models/fitzpatrick17k-condition-classes.json'))
codes = [c['code'] for c in cls]; part = [c['partition'] for c in cls]
P3 = ['malignant', 'benign', 'non-neoplastic']
def load(split, probs):
    rows = {r['md5hash']: r for r in csv.DictReader(open(f'models/basira-clinical/split-{split}.csv'))}
    X, y3, g, ty = [], [], [], []
    global YC; YC = []
    for line in open(probs):
        d = json.loads(line); h = d['file'].rsplit('/', 1)[1][:-4]; r = rows[h]
        X.append([d['probabilities'][c] for c in codes]); y3.append(P3.index(r['three_partition_label']))
        g.append(r['dup_group']); ty.append(r['phototype_group']); YC.append(codes.index(r['label']))
    return np.array(X), np.array(y3), np.array(g), np.array(ty)
def ece(p, y, bins=15):
    b = np.clip(np.ceil(p * bins).astype(int) - 1, 0, bins - 1); e = 0
    for k in range(bins):
        m = b == k
        if m.any(): e += m.sum() / len(p) * abs(y[m].mean() - p[m].mean())
    return e
def parts(X):
    return np.stack([X[:, [i for i in range(len(codes)) if part[i] == q]].sum(1) for q in P3], 1)
def logit(p): p = np.clip(p, 1e-6, 1 - 1e-6); return np.log(p / (1 - p))
def fit_platt(p, y, slope=True):
    z = logit(p); a, b = 1.0, 0.0
    for _ in range(100):
        q = 1 / (1 + np.exp(-(a * z + b))); r = q - y; w = q * (1 - q) + 1e-9
        if slope:
            H = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-6 * np.eye(2)
            gr = np.array([np.sum(r * z), np.sum(r)]); d = np.linalg.solve(H, gr); a -= d[0]; b -= d[1]
        else:
            b -= np.sum(r) / np.sum(w)
    return a, b
def apply(X, a, b):
    P = parts(X); p = P[:, 0]; q = 1 / (1 + np.exp(-(a * logit(p) + b)))
    s = np.where(np.arange(3) == 0, (q / np.maximum(p, 1e-12))[:, None], ((1 - q) / np.maximum(1 - p, 1e-12))[:, None])
    return P * s, q
def balacc(P, y): pr = P.argmax(1); return np.mean([np.mean(pr[y == k] == k) for k in range(3)])
def nll(q, y): q = np.clip(q, 1e-7, 1 - 1e-7); return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
def auc(q, y):
    o = np.argsort(q); r = np.empty(len(q)); r[o] = np.arange(1, len(q) + 1); n1 = y.sum(); n0 = len(y) - n1
    return (r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
X, y3, g, ty = load('val', sys.argv[1]); y = (y3 == 0).astype(float)
P = parts(X); p0 = P[:, 0]
print(f'val n={len(y)} mal={int(y.sum())}: ECE {ece(p0,y):.4f} NLL {nll(p0,y):.4f} AUC {auc(p0,y):.4f} bal3 {balacc(P,y3):.4f}')
print('in-sample fits: platt', fit_platt(p0, y), 'bias', fit_platt(p0, y, False))
res = {m: [] for m in ['none', 'bias', 'platt']}
ug = sorted(set(g))
for seed in range(20):
    rnd = random.Random(seed); gg = ug[:]; rnd.shuffle(gg); fold = {x: i % 5 for i, x in enumerate(gg)}
    f = np.array([fold[x] for x in g])
    out = {m: (np.zeros(len(y)), np.zeros((len(y), 3))) for m in res}
    for k in range(5):
        tr, te = f != k, f == k
        for m in res:
            a, b = (1.0, 0.0) if m == 'none' else fit_platt(p0[tr], y[tr], m == 'platt')
            Pq, q = apply(X[te], a, b); out[m][0][te] = q; out[m][1][te] = Pq
    for m in res:
        q, Pq = out[m]; res[m].append((ece(q, y), nll(q, y), balacc(Pq, y3)))
for m in res:
    a = np.array(res[m]); print(f'{m:6s} out-of-fold (20 x 5-fold by group): ECE {a[:,0].mean():.4f} ± {a[:,0].std():.4f}  NLL {a[:,1].mean():.4f}  bal3 {a[:,2].mean():.4f}')

yc = np.array(YC)
def topece(X): return ece(X.max(1), (X.argmax(1) == yc).astype(float))
def recall3(P): pr = P.argmax(1); return [round(float(np.mean(pr[y3 == k] == k)), 3) for k in range(3)]
print(f'temperature only on val: top-class ECE {topece(X):.4f} recall3 {recall3(P)}')
if len(sys.argv) > 2:
    Xp, *_ = load('val', sys.argv[2]); Pp = parts(Xp)
    print(f'written model on val (in-sample): ECE {ece(Pp[:,0],y):.4f} bal3 {balacc(Pp,y3):.4f} top-class ECE {topece(Xp):.4f} recall3 {recall3(Pp)} AUC {auc(Pp[:,0],y):.4f}')
