#!/usr/bin/env python3
"""Build the photo-kind table for `basira train`: one row per image of HAM10000
(dermoscopic) and Fitzpatrick17k (clinical), image paths relative to ../shared/data.

    make_csv.py DATA_DIR FITZ_DEDUP_CSV OUT_CSV

group: HAM10000 lesion_id; Fitzpatrick17k near-duplicate group from `basira dedup`,
so a split by group never puts two copies of one photo in different parts."""
import csv
import sys

data, dedup, out = sys.argv[1:4]
dup = {r[next(iter(r))]: r["dup_group"] for r in csv.DictReader(open(dedup, newline=""))}
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["image", "kind", "group"])
    for r in csv.DictReader(open(f"{data}/ham10000/metadata.csv", newline="")):
        w.writerow([f"ham10000/images/{r['image_id']}", "dermoscopic", "ham-" + r["lesion_id"]])
    for r in csv.DictReader(open(f"{data}/fitzpatrick17k/metadata.csv", newline="")):
        w.writerow([f"fitzpatrick17k/images/{r['md5hash']}", "clinical", "fitz-" + dup[r["md5hash"]]])
