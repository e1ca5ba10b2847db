#!/usr/bin/env bash
# `basira check`: JSON Lines shape and order, mixed good and bad files, exit statuses,
# French and Arabic output. Test photos are generated here (Python standard library).
set -u
B=${BASIRA_CLI:?}
PY=${PYTHON:-python3}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$PY" - "$T" <<'PYEOF'
import math, random, struct, sys, zlib
out = sys.argv[1]
def png(path, w, h, px):
    raw = b''.join(b'\0' + bytes(px[y * w * 3:(y + 1) * w * 3]) for y in range(h))
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
def scene(w, h, seed):
    # Textured skin with a brown lesion in the middle, like a sharp phone photo.
    rnd = random.Random(seed)
    px = []
    s = w / 200.0
    for y in range(h):
        for x in range(w):
            t = 10 * math.sin(x / (1.3 * s)) * math.cos(y / (1.7 * s)) + rnd.randint(-4, 4)
            d = math.hypot(x - w / 2, y - h / 2)
            k = 1.0 if d < 0.12 * w else 0.0
            for c, (sk, le) in enumerate(zip((215, 170, 145), (110, 70, 50))):
                px.append(max(0, min(255, int(round(sk * (1 - k) + le * k + t)))))
    return px
def blur(px, w, h, f):
    # Average f x f blocks, then bilinear back: detail finer than f pixels is gone.
    sw, sh = w // f, h // f
    small = [0.0] * (sw * sh * 3)
    for y in range(sh):
        for x in range(sw):
            for c in range(3):
                small[(y * sw + x) * 3 + c] = sum(px[((y * f + j) * w + x * f + i) * 3 + c]
                                                  for j in range(f) for i in range(f)) / (f * f)
    outp = []
    for y in range(h):
        fy = min(max((y + 0.5) / f - 0.5, 0), sh - 1); y0 = int(fy); y1 = min(y0 + 1, sh - 1); ay = fy - y0
        for x in range(w):
            fx = min(max((x + 0.5) / f - 0.5, 0), sw - 1); x0 = int(fx); x1 = min(x0 + 1, sw - 1); ax = fx - x0
            for c in range(3):
                g = lambda yy, xx: small[(yy * sw + xx) * 3 + c]
                v = (g(y0, x0) * (1 - ax) + g(y0, x1) * ax) * (1 - ay) + (g(y1, x0) * (1 - ax) + g(y1, x1) * ax) * ay
                outp.append(int(round(v)))
    return outp
good = scene(200, 150, 1)
png(out + '/good.png', 200, 150, good)
png(out + '/good2.png', 200, 150, scene(200, 150, 2))
png(out + '/blurry.png', 200, 150, blur(good, 200, 150, 8))
png(out + '/tiny.png', 40, 30, scene(40, 30, 3))
open(out + '/empty.jpg', 'wb').close()
open(out + '/notes.txt', 'w').write('patient notes, not a photo\n' * 20)
data = open(out + '/good.png', 'rb').read()
open(out + '/cut.png', 'wb').write(data[:len(data) // 2])
PYEOF
check "test photos generated" "[ -s '$T/good.png' ] && [ -s '$T/blurry.png' ]"

files=(good.png empty.jpg notes.txt tiny.png blurry.png missing.jpg cut.png good2.png)
(cd "$T" && "$B" check --json "${files[@]}") >"$T/out.jsonl" 2>"$T/err.txt"; rc=$?
check "mixed inputs: exit 1" "[ $rc -eq 1 ]"
"$PY" - "$T/out.jsonl" "${files[*]}" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
files = sys.argv[2].split()
want = [('ok', None), ('error', 'empty_file'), ('error', 'not_an_image'), ('error', 'image_too_small'),
        ('rejected', None), ('error', 'not_found'), ('error', 'corrupt_file'), ('ok', None)]
assert len(lines) == len(files), (len(lines), lines)
tones = {"very_light", "light", "intermediate", "tan", "brown", "dark", "unknown"}
for line, f, (status, code) in zip(lines, files, want):
    o = json.loads(line)                       # one complete JSON object per line
    assert o["file"] == f, (o["file"], f)      # input order
    assert o["status"] == status, (f, o)
    if status == "error":
        assert set(o) == {"file", "status", "error"}, o
        assert o["error"]["code"] == code and o["error"]["message"], o
        continue
    assert set(o) == {"file", "status", "quality", "skin_tone"}, o
    q = o["quality"]
    assert q["ok"] is (status == "ok"), q
    assert len(q["checks"]) >= 8
    for c in q["checks"]:
        assert set(c) == {"code", "value", "threshold", "passed", "message"}, c
        assert isinstance(c["passed"], bool) and isinstance(c["value"], (int, float))
        assert isinstance(c["threshold"], (int, float)) and c["message"]
    failed = [c["code"] for c in q["checks"] if not c["passed"]]
    assert (failed == []) == (status == "ok"), failed
    if f == "blurry.png":
        assert "blur" in failed, failed
    t = o["skin_tone"]
    assert set(t) == {"ita", "category"} and t["category"] in tones, t
    assert isinstance(t["ita"], (int, float))
print("json ok")
PYEOF
check "JSON Lines shape, order, statuses" "[ $? -eq 0 ]"

(cd "$T" && "$B" check --json good.png good2.png) >/dev/null; rc=$?
check "all good: exit 0" "[ $rc -eq 0 ]"
(cd "$T" && "$B" check good.png) >"$T/human.txt"; rc=$?
check "human output, exit 0" "[ $rc -eq 0 ] && grep -q 'good.png: good enough to analyse' '$T/human.txt'"
"$B" check >/dev/null 2>&1; rc=$?
check "no file: usage error" "[ $rc -eq 2 ]"
"$B" check --frobnicate "$T/good.png" >/dev/null 2>&1; rc=$?
check "unknown option: usage error" "[ $rc -eq 2 ]"
"$B" help check >/dev/null; rc=$?
check "help check" "[ $rc -eq 0 ]"

out=$(cd "$T" && LANG=fr_FR.UTF-8 "$B" check good.png blurry.png notes.txt); rc=$?
check "French: exit 1" "[ $rc -eq 1 ]"
check "French: accepted" "grep -q \"good.png : bonne pour l'analyse\" <<<\"\$out\""
check "French: blur instruction" "grep -q 'La photo est floue' <<<\"\$out\""
check "French: error message" "grep -q \"ce n'est pas une photo que Basira sait lire\" <<<\"\$out\""
out=$(cd "$T" && LANG=ar_MA.UTF-8 "$B" check good.png blurry.png); rc=$?
check "Arabic: exit 1" "[ $rc -eq 1 ]"
check "Arabic: accepted" "grep -q 'صالحة للتحليل' <<<\"\$out\""
check "Arabic: blur instruction" "grep -q 'الصورة ضبابية' <<<\"\$out\""
out=$(cd "$T" && LANG=fr_FR.UTF-8 "$B" check --json blurry.png)
check "French JSON: stable codes, French messages" \
  "grep -q '\"code\":\"blur\"' <<<\"\$out\" && grep -q 'La photo est floue' <<<\"\$out\""
exit $fail
