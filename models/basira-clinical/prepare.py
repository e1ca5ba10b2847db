#!/usr/bin/env python3
"""Join `basira dedup`'s near-duplicate groups to the Fitzpatrick17k table, for
models/basira-clinical/train.sh. Adds three columns:
  dup_group       near-duplicate group (basira dedup): the split keeps each whole
  phototype_group I-II, III-IV, V-VI or unknown (fitzpatrick_scale -1)
  stratum         phototype_group + "/" + three_partition_label: the split is
                  stratified by it (basira train --stratify-col), so every
                  phototype group has its share of each partition in every part
Usage: prepare.py METADATA.csv DUPS.csv OUT.csv"""
import csv
import sys

GROUPS = {"1": "I-II", "2": "I-II", "3": "III-IV", "4": "III-IV", "5": "V-VI", "6": "V-VI"}


def main(meta_path, dups_path, out_path):
    with open(dups_path, newline="", encoding="utf-8") as f:
        rd = csv.DictReader(f)
        name = rd.fieldnames[0]  # the image column, as given to basira dedup --image-col
        dup = {r[name]: r["dup_group"] for r in rd}
    with open(meta_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = [r["md5hash"] for r in rows if r["md5hash"] not in dup]
    if missing:
        sys.exit("prepare.py: %d images have no dup_group (first: %s)" % (len(missing), missing[0]))
    fields = list(rows[0].keys()) + ["dup_group", "phototype_group", "stratum"]
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in rows:
            r["dup_group"] = dup[r["md5hash"]]
            r["phototype_group"] = GROUPS.get(r["fitzpatrick_scale"], "unknown")
            r["stratum"] = r["phototype_group"] + "/" + r["three_partition_label"]
            w.writerow(r)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
