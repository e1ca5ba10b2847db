#!/usr/bin/env python3
"""Per-kind recall on a split from `basira classify --json` lines: the threshold on P(clinical)
that keeps >= 99% of the split's dermoscopic photos below it (chosen on that split), and the
recalls at a given threshold. Usage: recall.py SPLIT.csv CLASSIFY.jsonl [THRESHOLD]"""
import csv, json, sys, math
split, lines = sys.argv[1], sys.argv[2]
kind = {r['image'].split('/')[-1]: r['kind'] for r in csv.DictReader(open(split))}
pc = {}
for l in open(lines):
    j = json.loads(l)
    f = j['file'].split('/')[-1]
    for k in (f, f.rsplit('.', 1)[0]):
        if k in kind:
            pc[k] = j['probabilities']['clinical']
d = sorted(p for k, p in pc.items() if kind[k] == 'dermoscopic')
c = sorted(p for k, p in pc.items() if kind[k] == 'clinical')
def wilson(k, n, z=1.96):
    p = k / n; den = 1 + z*z/n; ctr = (p + z*z/(2*n)) / den
    h = z*math.sqrt(p*(1-p)/n + z*z/(4*n*n)) / den
    return p, ctr - h, ctr + h
def at(t):
    kd = sum(p < t for p in d); kc = sum(p >= t for p in c)
    return kd, kc
print(f'n dermoscopic {len(d)}, clinical {len(c)} (of {len(kind)} rows)')
# AUC (Mann-Whitney)
import bisect
auc = sum(bisect.bisect_left(d, p) + 0.5*(bisect.bisect_right(d, p) - bisect.bisect_left(d, p)) for p in c) / (len(c)*len(d))
print(f'AUC {auc:.4f}')
# best min recall
best = max(((min(at(t)[0]/len(d), at(t)[1]/len(c)), t) for t in sorted(set(d + c))))
print(f'best balanced point: min recall {best[0]:.4f} at t={best[1]:.4f}')
ts = [float(a) for a in sys.argv[3:]]
for t in ts:
    kd, kc = at(t)
    print('t=%.4f dermoscopic %d/%d %.4f [%.4f, %.4f]  clinical %d/%d %.4f [%.4f, %.4f]' % ((t, kd, len(d)) + wilson(kd, len(d)) + (kc, len(c)) + wilson(kc, len(c))))
