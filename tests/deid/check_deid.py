#!/usr/bin/python3
"""Independent check of `basira anonymize` on real DICOM files, with pydicom.

Basira reads and writes DICOM with DCMTK; this checker reads the results with pydicom
(another library, another parser) and asserts, on every file of Debian's python3-pydicom
test files (CT, MR, RT, secondary capture, compressed, big-endian, malformed):
  - no attribute that Table E.1-1 says to remove (X) or empty (Z) holds a value, at any
    depth; no private attribute; no person name but the pseudonym; no UID of the input;
  - Patient Identity Removed is YES and (0012,0064) holds code 113100;
  - pixel data is byte-identical;
  - two runs under one secret give byte-identical files (same pseudonyms, same UIDs); another
    secret gives other pseudonyms and UIDs;
  - different patients get different pseudonyms, the same patient (same Patient ID, another
    hospital) the same one;
  - malformed files, secondary captures (burned-in text) and non-DICOM files are refused,
    named on stderr, with exit status 1 and no output file (no partial file either);
  - the options (modified dates, patient characteristics, clean descriptors), the encrypted
    re-identification table, and photos (no EXIF/XMP/IPTC, file name replaced).
The profile's actions are read from src/deid/profile_table.c, the table generated from the
standard (its own test compares it with the standard's source); the checks are this file's.
Exit 77 (skip) when pydicom or its test files are absent.
"""
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import pydicom
    from pydicom.errors import InvalidDicomError
except ImportError:
    print("SKIP: python3-pydicom is not installed")
    sys.exit(77)

SRC = os.environ.get("BASIRA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ["BASIRA_CLI"]
TEST_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
if not os.path.isdir(TEST_FILES):
    print("SKIP: pydicom's test files are not installed")
    sys.exit(77)

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def load_rules():
    """(group, element, gmask, emask) -> basic action, from the generated table."""
    text = open(os.path.join(SRC, "src", "deid", "profile_table.c")).read()
    rules = []
    for m in re.finditer(r"\{0x([0-9A-F]{4}), 0x([0-9A-F]{4}), 0x([0-9A-F]{4}), 0x([0-9A-F]{4}),"
                         r"\s*DEID_(\w+),", text):
        g, e, gm, em = (int(x, 16) for x in m.groups()[:4])
        rules.append((g, e, gm, em, m.group(5)))
    if len(rules) < 600:
        raise SystemExit("FAIL: only %d rules read from profile_table.c" % len(rules))
    return rules


RULES = load_rules()
EXACT = {(g << 16) | e: a for g, e, gm, em, a in RULES if gm == 0xFFFF and em == 0xFFFF}
MASKED = [(g, e, gm, em, a) for g, e, gm, em, a in RULES if gm != 0xFFFF or em != 0xFFFF]
DUMMIES = {"ANONYMIZED", "19000101", "000000", "19000101000000", "0", "000Y"}


def rule_of(tag):
    a = EXACT.get(int(tag))
    if a:
        return a
    g, e = tag.group, tag.element
    for rg, re_, gm, em, act in MASKED:
        if (g & gm) == rg and (e & em) == re_:
            return act
    return None


def has_value(elem):
    if elem.VR == "SQ":
        return len(elem.value) > 0
    v = elem.value
    return v is not None and v != "" and v != b"" and not (isinstance(v, (list, tuple)) and
                                                          len(v) == 0)


def walk(ds, fn, path=""):
    for elem in ds:
        fn(elem, path)
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                walk(item, fn, "%s%s[%d]." % (path, elem.tag, i))


def input_uids(ds):
    out = set()

    def collect(elem, _):
        if elem.VR == "UI" and elem.value:
            vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) \
                else [elem.value]
            for v in vals:
                v = str(v)
                if v and not v.startswith("1.2.840.10008."):
                    out.add(v)
    walk(ds, collect)
    return out


def check_output(name, src_ds, out_path, pseudonyms):
    try:
        ds = pydicom.dcmread(out_path)
        walk(ds, lambda e, p: e.value)
    except Exception as e:  # noqa: BLE001 - any failure to read is a failure of the output
        fail("%s: output unreadable by pydicom: %s" % (name, e))
        return
    pseudo = str(ds.get("PatientID", ""))
    if not re.fullmatch(r"BSR[0-9A-Z]{20}", pseudo):
        fail("%s: Patient ID %r is not a pseudonym" % (name, pseudo))
    if str(ds.get("PatientName", "")) != pseudo:
        fail("%s: Patient's Name is not the pseudonym" % name)
    if ds.get("PatientIdentityRemoved") != "YES":
        fail("%s: Patient Identity Removed is not YES" % name)
    codes = [str(i.CodeValue) for i in ds.get("DeidentificationMethodCodeSequence", [])]
    if "113100" not in codes:
        fail("%s: (0012,0064) lacks 113100 (codes %s)" % (name, codes))
    orig_uids = input_uids(src_ds)

    def check(elem, path):
        where = "%s: %s%s %s" % (name, path, elem.tag, elem.name)
        if elem.tag.is_private:
            fail(where + " private attribute left")
            return
        act = rule_of(elem.tag)
        top_pid = path == "" and elem.tag in (0x00100020, 0x00100010)
        if act == "X" and has_value(elem):
            fail(where + " should be removed, holds %r" % (elem.value,))
        if act in ("Z", "XZ") and has_value(elem) and not top_pid:
            fail(where + " should be empty, holds %r" % (elem.value,))
        if act in ("D", "XD", "ZD", "XZD") and has_value(elem) and elem.VR not in ("SQ", "UI") \
                and not top_pid and str(elem.value) not in DUMMIES:
            fail(where + " should be a dummy, holds %r" % (elem.value,))
        if elem.VR == "PN" and has_value(elem) and str(elem.value) not in (pseudo, "ANONYMIZED"):
            fail(where + " person name left: %r" % (elem.value,))
        if elem.VR == "UI" and has_value(elem):
            vals = elem.value if isinstance(elem.value, pydicom.multival.MultiValue) \
                else [elem.value]
            for v in vals:
                if str(v) in orig_uids:
                    fail(where + " original UID %s left" % v)
    walk(ds, check)
    # Pixel data: byte-identical.
    if "PixelData" in src_ds:
        if "PixelData" not in ds:
            fail("%s: pixel data lost" % name)
        elif ds.PixelData != src_ds.PixelData:
            fail("%s: pixel data changed" % name)
    pid = str(src_ds.get("PatientID", "")).strip().upper()
    if pid:
        pseudonyms.setdefault(pid, set()).add(pseudo)


def run(args, expect=None):
    p = subprocess.run([CLI, "anonymize"] + args, capture_output=True, text=True)
    if expect is not None and p.returncode != expect:
        fail("anonymize %s: exit %d, expected %d\n%s" % (" ".join(args), p.returncode, expect,
                                                         p.stderr[-2000:]))
    return p


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        for n in names:
            out.append(os.path.relpath(os.path.join(root, n), d))
    return sorted(out)


def main():
    tmp = tempfile.mkdtemp(prefix="basira-deid-")
    try:
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("national-secret-of-the-data-steward-0123456789\n")
        os.chmod(secret, 0o600)
        other = os.path.join(tmp, "other-secret")
        with open(other, "w") as f:
            f.write("another-country-another-secret-9876543210\n")
        os.chmod(other, 0o600)

        # 1. Every test file, twice with one secret, once with another, once allowing SC.
        outs = {}
        for tag, key, extra in (("a", secret, []), ("b", secret, []), ("c", other, []),
                                ("sc", secret, ["--allow-burned-in"])):
            outs[tag] = os.path.join(tmp, "out-" + tag)
            p = run(["--secret-file", key, "--out", outs[tag]] + extra + [TEST_FILES], expect=1)
            outs[tag + "-stderr"] = p.stderr
        names = files_under(TEST_FILES)
        produced = set(files_under(outs["a"]))
        if any(n.endswith(".partial") for t in ("a", "b", "c", "sc") for n in files_under(outs[t])):
            fail("a .partial file was left behind")
        pseudonyms = {}
        n_checked = n_refused = 0
        for n in names:
            src = os.path.join(TEST_FILES, n)
            try:
                # force: files without the Part 10 preamble are DICOM too; reading every
                # element proves the whole file parses.
                src_ds = pydicom.dcmread(src, force=True)
                walk(src_ds, lambda e, p: e.value)
                readable = len(src_ds) > 0
            except Exception:  # noqa: BLE001 - any parse failure: pydicom cannot read it
                src_ds, readable = None, False
            for tag in ("a", "sc"):
                out = os.path.join(outs[tag], n)
                if os.path.exists(out):
                    if not readable:
                        fail("%s: pydicom cannot read the input, yet an output was written" % n)
                        continue
                    check_output(n + " (" + tag + ")", src_ds, out, pseudonyms)
                    n_checked += 1
                elif tag == "a":
                    n_refused += 1
                    if src not in outs["a-stderr"]:
                        fail("%s: no output and not named on stderr" % n)
        # Malformed files must be among the refused.
        for n in ("MR_truncated.dcm", "rtplan_truncated.dcm", "README.txt", "zipMR.gz"):
            if n in produced:
                fail("%s: malformed or not DICOM, yet de-identified" % n)
        # Secondary capture is refused by default (burned-in text), accepted when allowed.
        for n in names:
            if n.startswith("SC_rgb_rle") and n in produced:
                fail("%s: secondary capture accepted without --allow-burned-in" % n)
        if "SC_rgb_rle.dcm" not in set(files_under(outs["sc"])):
            fail("SC_rgb_rle.dcm refused even with --allow-burned-in")
        # 2. Stability: byte-identical runs; another secret changes pseudonyms and UIDs.
        same = other_differs = 0
        for n in sorted(produced):
            a = open(os.path.join(outs["a"], n), "rb").read()
            b = open(os.path.join(outs["b"], n), "rb").read()
            if a != b:
                fail("%s: two runs under one secret differ" % n)
            else:
                same += 1
            da = pydicom.dcmread(os.path.join(outs["a"], n))
            dc = pydicom.dcmread(os.path.join(outs["c"], n))
            if da.PatientID == dc.PatientID or da.SOPInstanceUID == dc.SOPInstanceUID:
                fail("%s: another secret gives the same pseudonym or UID" % n)
            else:
                other_differs += 1
        # 3. Pseudonyms: one per patient, distinct patients distinct.
        for pid, ps in pseudonyms.items():
            if len(ps) != 1:
                fail("patient %s got several pseudonyms %s" % (pid, ps))
        flat = [next(iter(p)) for p in pseudonyms.values()]
        if len(set(flat)) != len(flat):
            fail("two patients share a pseudonym")
        print("ok: %d outputs checked, %d inputs refused, %d byte-identical reruns, %d patients"
              % (n_checked, n_refused, same, len(pseudonyms)))

        check_hospitals(tmp, secret)
        check_options(tmp, secret)
        check_reid(tmp, secret, other)
        check_photos(tmp, secret)
        check_pixels(tmp, secret)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("all de-identification checks passed")


def check_hospitals(tmp, secret):
    """Same national Patient ID from two hospitals -> one pseudonym; another ID -> another."""
    d = os.path.join(tmp, "hospitals")
    os.makedirs(d)
    base = pydicom.dcmread(os.path.join(TEST_FILES, "CT_small.dcm"))
    for i, (pid, inst, name) in enumerate((("MA-1234567", "CHU Rabat", "Alaoui^Sara"),
                                           ("ma-1234567 ", "Hopital Fes", "ALAOUI^SARA^M"),
                                           ("MA-7654321", "CHU Rabat", "Bennani^Omar"))):
        ds = base.copy()
        ds.PatientID, ds.InstitutionName, ds.PatientName = pid, inst, name
        ds.SOPInstanceUID = "1.2.3.4.%d" % i
        ds.save_as(os.path.join(d, "h%d.dcm" % i))
    out = os.path.join(tmp, "hospitals-out")
    run(["--secret-file", secret, "--out", out, d], expect=0)
    p = [str(pydicom.dcmread(os.path.join(out, "h%d.dcm" % i)).PatientID) for i in range(3)]
    if p[0] != p[1]:
        fail("one patient from two hospitals got two pseudonyms %s" % p[:2])
    if p[2] == p[0]:
        fail("two patients got one pseudonym")
    # The output is never overwritten: a second run into the same folder refuses.
    q = run(["--secret-file", secret, "--out", out, d], expect=1)
    if "never overwritten" not in q.stderr:
        fail("rerun into an existing output: %s" % q.stderr)


def check_options(tmp, secret):
    d = os.path.join(tmp, "opt")
    os.makedirs(d)
    ds = pydicom.dcmread(os.path.join(TEST_FILES, "CT_small.dcm"))
    ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientAge = "Tazi^Karim", "ID42", "M", "045Y"
    ds.StudyDate, ds.StudyDescription = "20240315", "CT chest for Tazi follow-up ID42"
    ds.save_as(os.path.join(d, "opt.dcm"))
    out = os.path.join(tmp, "opt-basic")
    run(["--secret-file", secret, "--out", out, d], expect=0)
    b = pydicom.dcmread(os.path.join(out, "opt.dcm"))
    if b.get("StudyDate", "") or b.get("PatientSex", "") or "StudyDescription" in b:
        fail("basic profile kept a date, the sex or a description")
    out = os.path.join(tmp, "opt-all")
    run(["--secret-file", secret, "--out", out, "--retain-dates",
         "--retain-patient-characteristics", "--clean-descriptors", d], expect=0)
    o = pydicom.dcmread(os.path.join(out, "opt.dcm"))
    if not re.fullmatch(r"\d{8}", str(o.get("StudyDate", ""))) or o.StudyDate >= "20240315":
        fail("--retain-dates: Study Date %r not moved back" % o.get("StudyDate"))
    if o.get("PatientSex") != "M" or o.get("PatientAge") != "045Y":
        fail("--retain-patient-characteristics lost the sex or age")
    desc = str(o.get("StudyDescription", ""))
    if "Tazi" in desc or "ID42" in desc or "CT chest" not in desc:
        fail("--clean-descriptors: %r" % desc)
    codes = {str(i.CodeValue) for i in o.DeidentificationMethodCodeSequence}
    if not {"113100", "113107", "113108", "113105"} <= codes:
        fail("method codes %s" % codes)
    if o.get("LongitudinalTemporalInformationModified") != "MODIFIED":
        fail("Longitudinal Temporal Information Modified is not MODIFIED")
    # Retain Safe Private: exactly the listed private attribute (and its creator) stays.
    safe = os.path.join(tmp, "safe-private.txt")
    with open(safe, "w") as f:
        f.write("# group,creator,element\n0019,GEMS_ACQU_01,02\n")
    out = os.path.join(tmp, "opt-safe")
    run(["--secret-file", secret, "--out", out, "--retain-safe-private", safe, d], expect=0)
    s = pydicom.dcmread(os.path.join(out, "opt.dcm"))
    private = sorted(str(e.tag) for e in s if e.tag.is_private)
    if private != ["(0019, 0010)", "(0019, 1002)"] or s[0x00191002].value != 912:
        fail("--retain-safe-private kept %s" % private)
    if "113111" not in {str(i.CodeValue) for i in s.DeidentificationMethodCodeSequence}:
        fail("--retain-safe-private: code 113111 missing")
    with open(safe, "w") as f:
        f.write("0019;GEMS\n")
    p = run(["--secret-file", secret, "--out", os.path.join(tmp, "opt-bad"),
             "--retain-safe-private", safe, d], expect=1)
    if "expected GGGG,CREATOR,EE" not in p.stderr:
        fail("a malformed safe-private list: %s" % p.stderr)


def check_reid(tmp, secret, other):
    out = os.path.join(tmp, "reid-out")
    table = os.path.join(tmp, "reid.table")
    inside = os.path.join(out, "reid.table")
    os.makedirs(out)
    run(["--secret-file", secret, "--out", out, "--reid-table", inside,
         os.path.join(TEST_FILES, "MR_small.dcm")], expect=2)
    if os.path.exists(inside):
        fail("a re-identification table was written inside the output")
    run(["--secret-file", secret, "--out", out, "--reid-table", table,
         os.path.join(TEST_FILES, "MR_small.dcm")], expect=0)
    raw = open(table, "rb").read()
    src = pydicom.dcmread(os.path.join(TEST_FILES, "MR_small.dcm"))
    if str(src.PatientID).encode() in raw or b"pseudonym" in raw:
        fail("the re-identification table is not encrypted")
    p = run(["--secret-file", secret, "--show-reid-table", table], expect=0)
    if str(src.PatientID) not in p.stdout or "BSR" not in p.stdout:
        fail("the re-identification table does not give the patient back: %r" % p.stdout)
    p = run(["--secret-file", other, "--show-reid-table", table], expect=1)
    if str(src.PatientID) in p.stdout:
        fail("another secret decrypted the re-identification table")


def check_photos(tmp, secret):
    try:
        from PIL import Image
    except ImportError:
        print("note: python3-pil absent, photo checks skipped")
        return
    d = os.path.join(tmp, "photos")
    os.makedirs(d)
    img = Image.new("RGB", (320, 240), (180, 120, 100))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"        # Make
    exif[0x013B] = "Dr Secret Artist"  # Artist
    path = os.path.join(d, "Sara_Alaoui_2024-03-15.jpg")
    img.save(path, exif=exif.tobytes(), comment=b"patient Sara Alaoui")
    out = os.path.join(tmp, "photos-out")
    run(["--secret-file", secret, "--out", out, d], expect=1)  # no --patient-id: refused
    if files_under(out) if os.path.isdir(out) else []:
        fail("a photo was written without --patient-id")
    run(["--secret-file", secret, "--out", out, "--patient-id", "MA-1234567", d], expect=0)
    got = files_under(out)
    if len(got) != 1 or "Alaoui" in got[0] or not re.fullmatch(r"BSR[0-9A-Z]{20}-\d{12}\.jpg",
                                                                got[0]):
        fail("photo output names %s" % got)
        return
    data = open(os.path.join(out, got[0]), "rb").read()
    for marker in (b"Exif", b"PhoneMaker", b"Secret", b"Alaoui", b"http://ns.adobe.com/xap",
                   b"Photoshop 3.0"):
        if marker in data:
            fail("photo output still holds %r" % marker)
    if Image.open(io.BytesIO(data)).size != (320, 240):
        fail("photo output size changed")


def check_pixels(tmp, secret):
    """Clean Pixel Data by device rule: blanked where listed, untouched elsewhere."""
    d = os.path.join(tmp, "us")
    os.makedirs(d)
    ds = pydicom.dcmread(os.path.join(TEST_FILES, "CT_small.dcm"))
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "US", "ACME", "Sono 5"
    if "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    ds.save_as(os.path.join(d, "us.dcm"))
    sc = pydicom.dcmread(os.path.join(TEST_FILES, "SC_rgb_jpeg_dcmtk.dcm"))
    sc.Manufacturer, sc.ManufacturerModelName = "ACME", "Sono 5"
    sc.save_as(os.path.join(d, "sc-jpeg.dcm"))
    rules = os.path.join(tmp, "pixel-rules.txt")
    with open(rules, "w") as f:
        f.write("# device|model|size|rectangles\nACME|Sono 5|128x128|0,0,128,16;100,100,10,10\n"
                "ACME|Sono 5|%dx%d|0,0,10,10\n" % (sc.Rows, sc.Columns))
    out = os.path.join(tmp, "us-refused")
    p = run(["--secret-file", secret, "--out", out, os.path.join(d, "us.dcm")], expect=1)
    if "burned-in" not in p.stderr or os.path.exists(os.path.join(out, "us.dcm")):
        fail("ultrasound without Burned In Annotation NO was not refused: %s" % p.stderr)
    out = os.path.join(tmp, "us-clean")
    p = run(["--secret-file", secret, "--out", out, "--clean-pixels", rules, d], expect=1)
    if "sc-jpeg.dcm" not in p.stderr or os.path.exists(os.path.join(out, "sc-jpeg.dcm")):
        fail("compressed pixel data was not refused by the pixel rule: %s" % p.stderr)
    c = pydicom.dcmread(os.path.join(out, "us.dcm"))
    a, b = ds.pixel_array, c.pixel_array
    if (b[:16, :] != 0).any() or (b[100:110, 100:110] != 0).any():
        fail("the rule's rectangles are not blank")
    mask = a == a
    mask[:16, :] = False
    mask[100:110, 100:110] = False
    if (a[mask] != b[mask]).any():
        fail("pixels outside the rule's rectangles changed")
    if c.get("BurnedInAnnotation") != "NO" or "113101" not in {
            str(i.CodeValue) for i in c.DeidentificationMethodCodeSequence}:
        fail("cleaned image: Burned In Annotation %r, codes missing 113101" %
             c.get("BurnedInAnnotation"))
    with open(rules, "w") as f:
        f.write("ACME|Sono 6|128x128|0,0,128,16\n")
    run(["--secret-file", secret, "--out", os.path.join(tmp, "us-other"), "--clean-pixels", rules,
         os.path.join(d, "us.dcm")], expect=1)
    with open(rules, "w") as f:
        f.write("ACME|Sono 5|128x128|0,0,-1,16\n")
    p = run(["--secret-file", secret, "--out", os.path.join(tmp, "us-bad"), "--clean-pixels",
             rules, os.path.join(d, "us.dcm")], expect=1)
    if "expected MANUFACTURER|MODEL" not in p.stderr:
        fail("a malformed pixel rule: %s" % p.stderr)


main()
