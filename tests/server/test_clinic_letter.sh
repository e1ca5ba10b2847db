#!/usr/bin/env bash
# The clinic named in DIR/config.json is printed on the referral letters the node
# serves; a malformed "clinic" entry stops `basira serve` with a message.
set -u
B=${BASIRA_CLI:?}
command -v pdftotext >/dev/null || { echo "SKIP: pdftotext (poppler-utils) missing"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
T=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT
export BASIRA_ARGON2_FAST=1
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

head -c 32 /dev/urandom > "$T/key"; chmod 600 "$T/key"
printf 'a-long-test-password\n' > "$T/pw"
"$B" user add --data "$T/d" --key-file "$T/key" --role gp --password-file "$T/pw" gp1 >/dev/null

# Malformed: "clinic" without a name.
printf '{"clinic": {"address": "12 rue des Érables"}}\n' > "$T/d/config.json"
err=$("$B" serve --data "$T/d" --key-file "$T/key" --listen 127.0.0.1:0 2>&1 >/dev/null); rc=$?
check "malformed clinic refused" "[ $rc -eq 1 ] && grep -q clinic <<<\"\$err\""

printf '{"clinic": {"name": "Centre de santé Al Amal", "address": "12 rue des Érables, Fès", "contact": "+212 5 35 00 00 00"}}\n' > "$T/d/config.json"
port=$((20000 + RANDOM % 20000))
"$B" serve --data "$T/d" --key-file "$T/key" --listen 127.0.0.1:$port >/dev/null 2>"$T/serve.err" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
api=http://127.0.0.1:$port/api/v1
curl -s -c "$T/cj" -H 'Content-Type: application/json' \
  -d '{"username":"gp1","password":"a-long-test-password"}' "$api/session" >/dev/null
csrf=$(awk '$6 ~ /csrf/ {print $7}' "$T/cj")
id=$(curl -s -b "$T/cj" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
  -d '{"patient_ref":"PT-1","age":50,"sex":"female","body_site":"back","history":{"changed":true},"consent":{"care":true,"research":false,"recorded_by":"gp1"}}' \
  "$api/cases" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
check "case created" "[ -n '$id' ]"
curl -s -b "$T/cj" -o "$T/l.pdf" "$api/cases/$id/report.pdf?lang=fr"
check "letter names the clinic" "pdftotext '$T/l.pdf' - 2>/dev/null | grep -q 'Centre de santé Al Amal'"
check "letter has the clinic's contact" "pdftotext '$T/l.pdf' - 2>/dev/null | grep -q '+212 5 35 00 00 00'"
exit $fail
