#!/usr/bin/env bash
# `basira adapt`: usage errors, then with ../shared/data a tiny real adaptation of the
# bundled dermoscopy model to 80 Fitzpatrick17k clinical photos (three-partition head,
# 1 epoch): the model is written and loads, its provenance names the parent's SHA-256
# and the data manifest's (recomputed here), frozen stages equal the parent's.
set -u
B=${BASIRA_CLI:?}
SRC=${BASIRA_SOURCE_DIR:?}
MODEL=$SRC/models/basira-derm.safetensors
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
export OMP_NUM_THREADS=1

"$B" adapt --images "$T" --csv x --out "$T/o" >/dev/null 2>&1; rc=$?
check "no --from: usage error" "[ $rc -eq 2 ]"
"$B" adapt --from "$MODEL" --images "$T" --csv x --out "$T/o" --epochs 0 >/dev/null 2>&1; rc=$?
check "--epochs 0: usage error" "[ $rc -eq 2 ]"
"$B" adapt --from "$T/none.safetensors" --images "$T" --csv x --out "$T/o" >"$T/out" 2>&1; rc=$?
check "missing parent: failure naming it" "[ $rc -eq 1 ] && grep -q none.safetensors '$T/out'"

D=${BASIRA_DATA:-}/fitzpatrick17k
if [ ! -f "$D/metadata.csv" ]; then
  echo "skipped: ../shared/data/fitzpatrick17k is absent (the rest needs real photos)"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
head -1 "$D/metadata.csv" >"$T/local.csv"
tail -n +2 "$D/metadata.csv" | head -80 >>"$T/local.csv"
CLASSES=$SRC/models/fitzpatrick17k-partition-classes.json
common=(--from "$MODEL" --images "$D/images" --csv "$T/local.csv" --image-col md5hash
        --label-col three_partition_label --phototype-col fitzpatrick_scale --classes "$CLASSES"
        --epochs 1 --batch 16 --quiet)
"$B" adapt "${common[@]}" --freeze conv1,bn1,layer9 --out "$T/bad" >"$T/out" 2>&1; rc=$?
check "unknown stage to freeze: refused, named" "[ $rc -eq 2 ] && grep -q layer9 '$T/out'"
"$B" adapt "${common[@]}" --classes "$SRC/models/ham10000-classes.json" --out "$T/bad2" \
  >"$T/out" 2>&1; rc=$?
check "labels that are not classes: refused" "[ $rc -ne 0 ]"

"$B" adapt "${common[@]}" --freeze conv1,bn1,layer1 --out "$T/run" >"$T/out" 2>&1; rc=$?
cat "$T/out"
check "adaptation exits 0" "[ $rc -eq 0 ]"
check "table printed" "grep -q 'parent -> adapted' '$T/out' && grep -q 'DeLong' '$T/out'"
ens=$(python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"].get("ensemble","1"))' "$MODEL")
check "an ensemble parent is said to give one network (parent: $ens)" \
  "[ $ens -eq 1 ] && ! grep -q 'ensemble of' '$T/out' || grep -q 'ensemble of $ens networks' '$T/out'"
python3 - "$T/run/adapted.safetensors" "$MODEL" "$T/local.csv" "$D/images" <<'PY' || fail=1
import csv, hashlib, json, struct, sys
def load(p):
    data = open(p, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(data[8:8 + n])
    return h, lambda k: data[8 + n + h[k]["data_offsets"][0]:8 + n + h[k]["data_offsets"][1]]
ok = True
def check(name, cond):
    global ok
    print(("ok   " if cond else "FAIL ") + name)
    ok &= bool(cond)
ha, ta = load(sys.argv[1])
hp, tp = load(sys.argv[2])
meta = json.loads(ha["__metadata__"]["basira"])
ad = meta["adaptation"]
check("parent's network count", ad["parent_networks"] == int(hp["__metadata__"].get("ensemble", "1")))
check("parent SHA-256", ad["parent_sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest())
lines = b""
for row in csv.DictReader(open(sys.argv[3])):
    img = open(sys.argv[4] + "/" + row["md5hash"] + ".jpg", "rb").read()
    lines += ("%s %s %s\n" % (hashlib.sha256(img).hexdigest(), row["md5hash"],
                              row["three_partition_label"])).encode()
check("data manifest SHA-256", ad["data_manifest_sha256"] == hashlib.sha256(lines).hexdigest())
check("command line and date", "adapt" in ad["command_line"] and ad["date"].endswith("Z"))
check("frozen stages recorded", ad["frozen"] == ["conv1", "bn1", "layer1"])
check("new head: three classes", [c["code"] for c in meta["classes"]] ==
      ["malignant", "benign", "non-neoplastic"] and ha["fc.weight"]["shape"][0] == 3)
def values(h, t, k):  # the numbers, whatever the storage (the parent may be in F16)
    code = {"F32": "f", "F16": "e", "F64": "d"}[h[k]["dtype"]]
    raw = t(k)
    return struct.unpack("<%d%s" % (len(raw) // struct.calcsize(code), code), raw)
check("frozen tensors equal the parent's", all(values(ha, ta, k) == values(hp, tp, k) for k in ha
      if k.startswith(("conv1.", "bn1.", "layer1."))))
check("other tensors learned", values(ha, ta, "layer3.0.conv1.weight") !=
      values(hp, tp, "layer3.0.conv1.weight"))
check("recalibrated", "calibration" in meta and meta["thresholds"]["medium"] > 0)
f = ad["test_figures"]
check("before and after on the same test cases", f["parent"]["n"] == f["adapted"]["n"] > 0)
sys.exit(0 if ok else 1)
PY
# `basira triage --json` gives the three partitions for every model (dermoscopy: no
# non-neoplastic class, so 0); they sum to 1 and malignant is risk.malignant_probability.
IMG=$D/images/$(sed -n 2p "$T/local.csv" | cut -d, -f1).jpg
for m in "$MODEL" "$T/run/adapted.safetensors"; do
  "$B" triage --json --force --model "$m" "$IMG" >"$T/tri.json" 2>/dev/null
  python3 - "$T/tri.json" "$m" <<'PY' || fail=1
import json, sys
r = json.loads(open(sys.argv[1]).readline())
p = r["partition"]
derm = sys.argv[2].endswith("basira-derm.safetensors")
ok = (abs(sum(p.values()) - 1) < 1e-5 and abs(p["malignant"] - r["risk"]["malignant_probability"]) < 1e-9
      and (p["non-neoplastic"] == 0) == derm)
print(("ok   " if ok else "FAIL ") + "partition of " + sys.argv[2].split("/")[-1], p)
sys.exit(0 if ok else 1)
PY
done
exit $fail
