#!/usr/bin/python3
"""`basira archive push` and `pull` against a real Orthanc on loopback, its index in a real
PostgreSQL (orthanc-postgresql), both started here in a temporary folder and stopped at the end.

PostgreSQL refuses to run as root: when the test runs as root, the server runs as the
unprivileged user `nobody` (through runuser). Without PostgreSQL the test uses Orthanc's
default SQLite index and says so; without Orthanc it skips (77).
Checks: anonymised files are stored and verified byte for byte; a file that is not
de-identified is refused before sending (the archive never sees it); wrong credentials are
refused; pull builds images + labels.csv from a query, with the pseudonyms as the group
column, and `basira train` accepts the result as a training set.
"""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import base64

CLI = os.environ["BASIRA_CLI"]
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
try:
    import pydicom
except ImportError:
    print("SKIP: python3-pydicom is not installed")
    sys.exit(77)
if not os.path.exists(ORTHANC):
    print("SKIP: Orthanc is not installed (Debian package orthanc)")
    sys.exit(77)
TEST_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def free_port():
    """A free TCP port in this test's range 24000-24999."""
    for _ in range(200):
        p = random.randint(24000, 24999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise SystemExit("FAIL: no free port in 24000-24999")


def wait_port(port, proc, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def start_postgres(tmp):
    if not os.path.exists(os.path.join(PG_BIN, "initdb")) or not os.path.exists(PG_PLUGIN):
        return None
    data = os.path.join(tmp, "pg")
    os.makedirs(data)
    prefix = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "nobody", "--"]
        os.chmod(tmp, 0o755)
        shutil.chown(data, "nobody", "nogroup")
    port = free_port()
    r = subprocess.run(prefix + [PG_BIN + "/initdb", "-D", data, "-A", "trust", "-U", "orthanc",
                                 "--no-sync"], capture_output=True, text=True)
    if r.returncode:
        print("note: initdb failed, using Orthanc's SQLite index:", r.stderr[-500:])
        return None
    log = os.path.join(data, "log")
    r = subprocess.run(prefix + [PG_BIN + "/pg_ctl", "-D", data, "-l", log, "-w", "-o",
                                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                                 % (port, data), "start"], capture_output=True, text=True)
    if r.returncode:
        print("note: PostgreSQL did not start:", r.stderr[-500:])
        return None
    subprocess.run(["/usr/lib/postgresql/15/bin/psql" if os.path.exists(
        "/usr/lib/postgresql/15/bin/psql") else "psql", "-h", "127.0.0.1", "-p", str(port),
        "-U", "orthanc", "-d", "postgres", "-c", "CREATE DATABASE orthanc"],
        capture_output=True, text=True)
    return {"port": port, "data": data, "prefix": prefix}


def stop_postgres(pg):
    if pg:
        subprocess.run(pg["prefix"] + [PG_BIN + "/pg_ctl", "-D", pg["data"], "-m", "fast", "-w",
                                       "stop"], capture_output=True)


def api(port, path, user="steward", password="s3cret-pw", data=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data)
    req.add_header("Authorization", "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def cli(args, expect=None, env=None):
    p = subprocess.run([CLI] + args, capture_output=True, text=True, env=env)
    if expect is not None and p.returncode != expect:
        fail("basira %s: exit %d, expected %d\n%s%s" % (" ".join(args), p.returncode, expect,
                                                        p.stdout[-1500:], p.stderr[-1500:]))
    return p


def main():
    tmp = tempfile.mkdtemp(prefix="basira-archive-")
    orthanc = None
    pg = None
    try:
        pg = start_postgres(tmp)
        port = free_port()
        conf = {
            "Name": "basira-test", "StorageDirectory": os.path.join(tmp, "storage"),
            "IndexDirectory": os.path.join(tmp, "index"), "HttpPort": port,
            "DicomServerEnabled": False, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True, "RegisteredUsers": {"steward": "s3cret-pw"},
            "HttpsCACertificates": "", "StorageCompression": False,
            "OverwriteInstances": False, "Plugins": [],
        }
        if pg:
            conf["Plugins"] = [PG_PLUGIN]
            conf["PostgreSQL"] = {"EnableIndex": True, "EnableStorage": False,
                                  "Host": "127.0.0.1", "Port": pg["port"], "Database": "orthanc",
                                  "Username": "orthanc", "Password": "", "Lock": False}
        cfg = os.path.join(tmp, "orthanc.json")
        with open(cfg, "w") as f:
            json.dump(conf, f)
        log = open(os.path.join(tmp, "orthanc.log"), "w")
        orthanc = subprocess.Popen([ORTHANC, cfg], stdout=log, stderr=subprocess.STDOUT)
        if not wait_port(port, orthanc):
            print(open(os.path.join(tmp, "orthanc.log")).read()[-3000:])
            raise SystemExit("FAIL: Orthanc did not start")
        print("Orthanc on 127.0.0.1:%d, index: %s" % (port, "PostgreSQL %d" % pg["port"] if pg
                                                      else "SQLite (PostgreSQL unavailable)"))
        url = "http://127.0.0.1:%d" % port
        if pg and not any("postgresql" in x.lower() for x in api(port, "/plugins")):
            fail("the PostgreSQL index plugin is not loaded: %s" % api(port, "/plugins"))
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("national-secret-of-the-data-steward-0123456789\n")
        os.chmod(secret, 0o600)
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("s3cret-pw\n")
        bad_pw = os.path.join(tmp, "bad-pw")
        with open(bad_pw, "w") as f:
            f.write("wrong\n")

        # A small labelled set: CT_small under 6 patients, labelled by the study description.
        src = os.path.join(tmp, "hospital")
        os.makedirs(src)
        base = pydicom.dcmread(os.path.join(TEST_FILES, "CT_small.dcm"))
        for i in range(6):
            ds = base.copy()
            ds.PatientID = "MA-%07d" % (i // 2)
            ds.PatientName = "Patient^Number%d" % (i // 2)
            ds.StudyDescription = "pneumonia" if i % 2 else "normal"
            ds.StudyInstanceUID = "1.2.3.%d" % i
            ds.SeriesInstanceUID = "1.2.3.%d.1" % i
            ds.SOPInstanceUID = "1.2.3.%d.1.1" % i
            ds.save_as(os.path.join(src, "img%d.dcm" % i))
        anon = os.path.join(tmp, "anon")
        cli(["anonymize", "--secret-file", secret, "--out", anon, "--clean-descriptors", src],
            expect=0)

        # push: everything stored and verified.
        p = cli(["archive", "push", "--url", url, "--user", "steward", "--password-file", pw,
                 "--json", anon], expect=0)
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
        if len(lines) != 6 or not all(x.get("verified") for x in lines):
            fail("push did not store and verify 6 instances: %s" % p.stdout)
        stored = api(port, "/instances")
        if len(stored) != 6:
            fail("Orthanc holds %d instances, expected 6" % len(stored))
        # The archive holds pseudonyms only.
        pids = {api(port, "/instances/%s/simplified-tags" % i)["PatientID"] for i in stored}
        if len(pids) != 3 or not all(x.startswith("BSR") for x in pids):
            fail("archive patients %s" % pids)
        # Pushing again: AlreadyStored, still verified.
        p = cli(["archive", "push", "--url", url, "--user", "steward", "--password-file", pw,
                 "--json", os.path.join(anon, "img0.dcm")], expect=0)
        if "AlreadyStored" not in p.stdout:
            fail("second push: %s" % p.stdout)

        # A file that is not de-identified is refused before it is sent.
        p = cli(["archive", "push", "--url", url, "--user", "steward", "--password-file", pw,
                 os.path.join(src, "img0.dcm")], expect=1)
        if "not de-identified" not in p.stderr:
            fail("identified file: %s" % p.stderr)
        if len(api(port, "/instances")) != 6:
            fail("an identified file reached the archive")
        # Wrong password, missing password, unreachable archive.
        cli(["archive", "push", "--url", url, "--user", "steward", "--password-file", bad_pw,
             os.path.join(anon, "img1.dcm")], expect=1)
        cli(["archive", "push", "--url", url, "--user", "steward",
             os.path.join(anon, "img1.dcm")], expect=2,
            env={k: v for k, v in os.environ.items() if k != "BASIRA_ARCHIVE_PASSWORD"})
        cli(["archive", "push", "--url", "http://127.0.0.1:%d" % free_port(),
             os.path.join(anon, "img1.dcm")], expect=1)

        # pull: a training set from a query.
        out = os.path.join(tmp, "set")
        p = cli(["archive", "pull", "--url", url, "--user", "steward", "--password-file", pw,
                 "--query", "Modality=CT", "--label-tag", "StudyDescription", "--out", out],
                expect=0)
        rows = open(os.path.join(out, "labels.csv")).read().splitlines()
        if rows[0] != "file,label,patient" or len(rows) != 7:
            fail("labels.csv: %s" % rows)
        labels = sorted(r.split(",")[1] for r in rows[1:])
        if labels != ["normal"] * 3 + ["pneumonia"] * 3:
            fail("labels %s" % labels)
        for r in rows[1:]:
            f, _, patient = r.split(",")
            data = open(os.path.join(out, "images", f), "rb").read()
            if not data.startswith(b"\x89PNG") or not patient.startswith("BSR"):
                fail("pulled row %s" % r)
        p = cli(["archive", "pull", "--url", url, "--user", "steward", "--password-file", pw,
                 "--query", "Modality=MR", "--label-tag", "StudyDescription", "--out",
                 os.path.join(tmp, "empty")], expect=0)
        if len(open(os.path.join(tmp, "empty", "labels.csv")).read().splitlines()) != 1:
            fail("a query matching nothing gave rows")
        # The set trains (2 epochs, tiny), grouped by pseudonymous patient.
        cli(["train", "--images", os.path.join(out, "images"), "--csv",
             os.path.join(out, "labels.csv"), "--image-col", "file", "--label-col", "label",
             "--group-col", "patient", "--split", "0.34,0.33,0.33", "--arch", "resnet",
             "--width", "8", "--depth", "1", "--input-size", "32", "--epochs", "1", "--batch",
             "2", "--threads", "1", "--quiet", "--out", os.path.join(tmp, "run")], expect=0)
    finally:
        if orthanc:
            orthanc.terminate()
            try:
                orthanc.wait(20)
            except subprocess.TimeoutExpired:
                orthanc.kill()
        stop_postgres(pg)
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("archive push/pull checks passed")


main()
