import json,csv,os,sys
import numpy as np
meta={r['md5hash']:r for r in csv.DictReader(open('/work/shared/data/fitzpatrick17k/metadata.csv'))}
rows=[]
# usage: fitzpatrick17k_shift.py [TRIAGE.jsonl] (default /tmp/fitz-triage.jsonl), the output of
#   basira triage --json --force --modality dermoscopic --modality-confirmed IMAGES...
for l in open(sys.argv[1] if len(sys.argv) > 1 else '/tmp/fitz-triage.jsonl'):
    j=json.loads(l); h=os.path.basename(j['file'])[:-4]; m=meta.get(h)
    if not m or j['status']=='error' or 'risk' not in j: continue
    rows.append((m['fitzpatrick_scale'], m['three_partition_label']=='malignant', j['risk']['malignant_probability'], j['risk']['category'], j['skin_tone']['category'], j['quality']['ok']))
def auc(s,y):
    s=np.array(s); y=np.array(y); pos=s[y]; neg=s[~y]
    if len(pos)==0 or len(neg)==0: return float('nan')
    r=np.argsort(np.argsort(np.concatenate([pos,neg]),kind='mergesort'))+1
    # midranks
    allv=np.concatenate([pos,neg]); order=np.argsort(allv,kind='mergesort'); r=np.empty(len(allv)); sv=allv[order]; i=0
    while i<len(sv):
        j=i
        while j+1<len(sv) and sv[j+1]==sv[i]: j+=1
        r[order[i:j+1]]=(i+j)/2+1; i=j+1
    return (r[:len(pos)].sum()-len(pos)*(len(pos)+1)/2)/(len(pos)*len(neg))
def summary(name,sub):
    y=[r[1] for r in sub]; s=[r[2] for r in sub]
    hm=[r[3] in ('high','medium') for r in sub]
    npos=sum(y); nneg=len(y)-npos
    sens=sum(h for h,t in zip(hm,y) if t)/npos if npos else float('nan')
    spec=sum((not h) for h,t in zip(hm,y) if not t)/nneg if nneg else float('nan')
    print(f"{name:14s} n={len(sub):4d} malignant={npos:4d} AUC={auc(s,y):.3f} sens(high+med)={sens:.3f} spec={spec:.3f} quality_ok={np.mean([r[5] for r in sub]):.3f}")
summary('all',rows)
for t in ['1','2','3','4','5','6','-1']:
    summary('fitzpatrick '+t,[r for r in rows if r[0]==t])
for c in ['very_light','light','intermediate','tan','brown','dark','unknown']:
    sub=[r for r in rows if r[4]==c]
    if sub: summary('ITA '+c,sub)
