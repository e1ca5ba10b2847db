#!/usr/bin/env python3
"""`basira-triage` (the lean program) says exactly what `basira triage` says: the same
stdout, stderr and exit status, byte for byte, for the same arguments: JSON Lines and
human output, English and French, scored, rejected, unreadable and missing photos, usage
errors; with the bundled models on real photos (dermoscopic and clinical, and one
upscaled to 12 MP) when ../shared/data is there. Then what the lazy pipeline changes:
a broken bundled clinical model no longer stops dermoscopic photos, and answers each
photo that needs it with an error; the HEIF plugin is loaded only for a HEIF input; and
libvips not at all for a plain 12 MP phone JPEG, which the program reads itself, while
any other run is handed to `basira triage`. Last, the `basira` front program (FRONT):
`basira triage` runs the lean program, every other command basira-all (BASIRA_CLI), with
the same output, and a front program left alone says so and exits 127.

Usage: test_lean_triage.py MAKE_FIXTURES BASIRA_TRIAGE FRONT  (BASIRA_CLI, BASIRA_SOURCE_DIR,
BASIRA_DATA set by CTest)
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

CLI = os.environ["BASIRA_CLI"]
SRC = os.environ["BASIRA_SOURCE_DIR"]
DATA = os.environ.get("BASIRA_DATA", "")
LEAN = sys.argv[2]
FRONT = sys.argv[3]
failed = []


def check(name, cond, detail=""):
    """One line per check; a failure shows what was seen (cut to 2000 characters)."""
    print(("ok   %s" % name) if cond else ("FAIL %s: %s" % (name, detail[:2000])))
    failed.extend([] if cond else [name])


def env_for(lang, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    env["LANG"] = lang
    env.update(extra or {})
    return env


def run(prog, args, lang="en_US.UTF-8", extra=None):
    p = subprocess.run(prog + args, capture_output=True, env=env_for(lang, extra), timeout=300)
    return p.returncode, p.stdout, p.stderr


def compare(name, ref, other, args, lang="en_US.UTF-8", extra=None):
    """Two programs on args: the same exit status, stdout and stderr; returns ref's."""
    a = run(ref, args, lang, extra)
    b = run(other, args, lang, extra)
    check(name + ": same exit status", a[0] == b[0], "%d vs %d" % (a[0], b[0]))
    for i, what in ((1, "stdout"), (2, "stderr")):
        check(name + ": same " + what, a[i] == b[i],
              a[i].decode(errors="replace") + "\n---\n" + b[i].decode(errors="replace"))
    return a


def same(name, args, lang="en_US.UTF-8", extra=None):
    """basira-all triage and the lean program on args; returns basira-all's result."""
    return compare(name, [CLI, "triage"], [LEAN], args, lang, extra)


def lines(out):
    return [json.loads(l) for l in out.decode().splitlines() if l.strip()]


tmp = tempfile.mkdtemp(prefix="basira-lean-triage-")
if subprocess.run([sys.argv[1], tmp]).returncode:
    print("FAIL fixtures")
    sys.exit(1)
model = os.path.join(tmp, "tiny.safetensors")
photo, flat, garbage = (os.path.join(tmp, n) for n in ("photo.jpg", "flat.jpg", "garbage.jpg"))
missing = os.path.join(tmp, "no-such-photo.jpg")

# --- the tiny model: every status, both output forms, two languages ---------------------
rc, out, _ = same("json", ["--json", "--model", model, photo, garbage, flat, missing, photo])
ls = lines(out)
check("json: one line per readable input, a failed one reported", rc == 1 and len(ls) == 5,
      str(len(ls)))
check("json: statuses", [l.get("status") for l in ls][:3] == ["ok", "error", "rejected"]
      if len(ls) >= 3 else False, out.decode())
same("human", ["--model", model, photo, flat])
same("human, French", ["--model", model, photo, flat], lang="fr_FR.UTF-8")
same("forced, with history", ["--json", "--force", "--history", "changed", "--model", model, flat])
same("no detector", ["--json", "--modality-model", "none", "--model", model, photo])
same("usage: no image", ["--json"])
same("usage: unknown option", ["--no-such-option", photo])
same("usage: option without value", ["--model"], lang="fr_FR.UTF-8")
same("usage: bad --modality", ["--modality", "xray", photo])
same("help", ["--help"])
same("missing model", ["--json", "--model", missing, photo])

# --- the bundled models on real photos ----------------------------------------------------
real = []
if DATA and os.path.isdir(DATA):
    real += sorted(glob.glob(os.path.join(DATA, "ham10000", "images", "*.jpg")))[:4]
    real += sorted(glob.glob(os.path.join(DATA, "fitzpatrick17k", "images", "*.jpg")))[:4]
if real:
    big = os.path.join(tmp, "photo12mp.jpg")
    mk = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "bench", "triage", "photo12mp.py"),
                         big, real[0]], capture_output=True)
    if mk.returncode == 0:
        real.append(big)
    rc, out, _ = same("bundled models, real photos", ["--json", "--force"] + real)
    ls = lines(out)
    check("real photos: every one scored", len(ls) == len(real) and
          all(l.get("status") == "ok" for l in ls), out.decode())
    kinds = {l.get("modality", {}).get("kind") for l in ls}
    check("real photos: both kinds routed (the clinical model loaded on demand)",
          kinds == {"dermoscopic", "clinical"}, str(kinds))
    names = {l.get("model", {}).get("name") for l in ls}
    check("real photos: both models scored", names == {"basira-derm", "basira-clinical"},
          str(names))
    same("bundled models, human, Arabic", real[:2], lang="ar_MA.UTF-8")
    same("declared clinical, confirmed", ["--json", "--modality", "clinical",
                                          "--modality-confirmed", real[0]])
else:
    print("skip real photos: no %s" % (DATA or "BASIRA_DATA"))

def datadir_with_broken(broken):
    """A BASIRA_DATADIR holding the three bundled models, the one named broken damaged."""
    dd = os.path.join(tmp, "datadir-" + broken)
    os.makedirs(os.path.join(dd, "models"))
    for m in ("basira-derm", "basira-clinical", "basira-modality"):
        dst = os.path.join(dd, "models", m + ".safetensors")
        if m == broken:
            with open(dst, "wb") as f:
                f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}  ")
        else:
            shutil.copy(os.path.join(SRC, "models", m + ".safetensors"), dst)
    return {"BASIRA_DATADIR": dd}


# --- lazy loading: a broken bundled clinical model ------------------------------------------
extra = datadir_with_broken("basira-clinical")
rc, out, err = run([LEAN], ["--json", "--force", "--modality", "dermoscopic",
                            "--modality-confirmed", photo], extra=extra)
ls = lines(out)
check("broken clinical model: a dermoscopic photo is still scored",
      rc == 0 and len(ls) == 1 and ls[0].get("status") == "ok"
      and ls[0].get("model", {}).get("name") == "basira-derm", out.decode() + err.decode())
rc, out, err = run([LEAN], ["--json", "--force", "--modality", "clinical", "--modality-confirmed",
                            photo, photo], extra=extra)
ls = lines(out)
check("broken clinical model: each clinical photo is an error naming the model",
      rc == 1 and len(ls) == 2 and all(l.get("status") == "error" and
                                       l.get("error", {}).get("code") == "model_invalid" for l in ls),
      out.decode() + err.decode())
rc, out, err = run([LEAN], ["--json", "--force", "--modality", "clinical", "--modality-confirmed",
                            "--clinical-model", os.path.join(SRC, "models",
                                                             "basira-clinical.safetensors"),
                            photo], extra=extra)
ls = lines(out)
check("broken bundled clinical model replaced by --clinical-model: scored by it",
      rc == 0 and len(ls) == 1 and ls[0].get("model", {}).get("name") == "basira-clinical",
      out.decode() + err.decode())

# --- lazy loading: a broken bundled dermoscopy model -----------------------------------------
# A clinical photo never needs the dermoscopy model, so it must not even be read: with it
# damaged, clinical photos are still scored, and a dermoscopic one is an error naming it.
extra = datadir_with_broken("basira-derm")
rc, out, err = run([LEAN], ["--json", "--force", "--modality", "clinical", "--modality-confirmed",
                            photo], extra=extra)
ls = lines(out)
check("broken dermoscopy model: a clinical photo is still scored, by the clinical model",
      rc == 0 and len(ls) == 1 and ls[0].get("status") == "ok"
      and ls[0].get("model", {}).get("name") == "basira-clinical", out.decode() + err.decode())
rc, out, err = run([LEAN], ["--json", "--force", "--modality", "dermoscopic",
                            "--modality-confirmed", photo, photo], extra=extra)
ls = lines(out)
check("broken dermoscopy model: each dermoscopic photo is an error naming the model",
      rc == 1 and len(ls) == 2 and all(l.get("status") == "error" and
                                       l.get("error", {}).get("code") == "model_invalid" and
                                       "model" not in l for l in ls),
      out.decode() + err.decode())
junk = os.path.join(tmp, "junk.jpg")
with open(junk, "wb") as f:
    f.write(b"not a photo at all")
rc, out, err = run([LEAN], ["--json", junk], extra=extra)
ls = lines(out)
check("broken dermoscopy model: an unreadable photo keeps its own error, naming no model",
      rc == 1 and len(ls) == 1 and ls[0].get("status") == "error" and
      ls[0].get("error", {}).get("code") not in (None, "model_invalid") and "model" not in ls[0],
      out.decode() + err.decode())
rc, out, err = run([LEAN], ["--force", "--modality", "clinical", "--modality-confirmed", photo],
                   extra=extra)
check("broken dermoscopy model, human output: the clinical photo and its model named",
      rc == 0 and b"Model: basira-clinical" in out and b"basira-derm" not in out and
      b"Decision support" in out, out.decode() + err.decode())
cfg = os.path.join(tmp, "site.json")
with open(cfg, "w") as f:
    json.dump({"thresholds": {"high": 0.2, "medium": 0.5}}, f)
rc, out, err = run([LEAN], ["--json", "--config", cfg, photo], extra=extra)
check("thresholds wrong for any model: refused at start even though the model is deferred",
      rc != 0 and not lines(out) and err.strip(), out.decode() + err.decode())

# --- the HEIF plugin only for HEIF inputs -------------------------------------------------------
heic = os.path.join(SRC, "fuzz", "corpus", "intake", "seed.heic")


def loaded_heif(args):
    p = subprocess.run([LEAN] + args, capture_output=True, env=env_for("C", {"LD_DEBUG": "files"}),
                       timeout=300)
    return b"libheif" in p.stderr


check("a JPEG alone: no HEIF plugin", not loaded_heif(["--json", "--model", model, photo]))
check("a HEIF input: the HEIF plugin", loaded_heif(["--json", "--model", model, photo, heic]))
rc, out, _ = same("HEIF photo", ["--json", "--model", model, heic])
ls = lines(out)
check("HEIF photo decoded (too small, not 'not an image')", len(ls) == 1 and
      ls[0].get("error", {}).get("code") == "image_too_small", out.decode())

# --- no libvips: the common phone JPEG is read here, any other run is handed over -------------
def loads_vips(args, prog=None):
    p = subprocess.run((prog or [LEAN]) + args, capture_output=True,
                       env=env_for("C", {"LD_DEBUG": "files"}), timeout=300)
    return b"libvips" in p.stderr


big12 = os.path.join(tmp, "synthetic12mp.jpg")
mk = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "bench", "triage", "photo12mp.py"),
                     big12], capture_output=True)
check("12 MP fixture made", mk.returncode == 0, mk.stderr.decode())
if mk.returncode == 0:
    check("a 12 MP phone JPEG: read without libvips", not loads_vips(["--json", "--force", big12]))
    same("a 12 MP phone JPEG, bundled models", ["--json", "--force", big12])
    same("a 12 MP phone JPEG, declared clinical", ["--modality", "clinical",
                                                   "--modality-confirmed", big12])
    check("another model asked for: handed to basira triage",
          loads_vips(["--json", "--force", "--model", model, big12]))
    check("with a small photo too: handed to basira triage",
          loads_vips(["--json", "--force", big12, photo]))
    check("standard input: handed to basira triage", loads_vips(["--json", "-"]))

# --- the `basira` front program -----------------------------------------------------------------
def front_same(name, args, lang="en_US.UTF-8"):
    return compare(name, [CLI], [FRONT], args, lang)


front_same("front: version", ["--version"])
front_same("front: no command", [])
front_same("front: unknown command, French", ["no-such-command"], lang="fr_FR.UTF-8")
front_same("front: help of a command", ["help", "triage"])
front_same("front: triage, tiny model", ["triage", "--json", "--model", model, photo, flat])
front_same("front: triage, usage error", ["triage", "--version"])
front_same("front: triage, a photo named like an option's word", ["triage", "--json", "version"])
front_same("front: check", ["check", "--json", photo, flat])
if mk.returncode == 0:
    front_same("front: triage of a 12 MP phone JPEG", ["triage", "--json", "--force", big12])
    check("front: triage of a 12 MP phone JPEG runs without libvips",
          not loads_vips(["triage", "--json", "--force", big12], [FRONT]))
    check("front: any other command runs basira-all", loads_vips(["--version"], [FRONT]))
lone = os.path.join(tmp, "lone")
os.makedirs(lone)
shutil.copy(FRONT, os.path.join(lone, "basira"))
for args in (["--version"], ["triage", photo]):
    rc, out, err = run([os.path.join(lone, "basira")], args)
    want = "basira-triage" if args[0] == "triage" else "basira-all"
    check("front alone (%s): exit 127 naming %s" % (args[0], want),
          rc == 127 and not out and os.path.join(lone, want).encode() in err, err.decode())

shutil.rmtree(tmp, ignore_errors=True)
print("%d failure(s)" % len(failed))
sys.exit(1 if failed else 0)
