#!/usr/bin/env bash
# The clinic named in DIR/config.json is printed on the referral letters the node
# serves; a malformed "clinic" entry stops `basira serve` with a message. The same
# letter and the open export come from `basira letter` / `basira export` through
# the case service, audited like the API's.
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

head -c 32 /dev/urandom > "$T/key"
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
kill "$pid"; wait "$pid" 2>/dev/null; pid=

# The command line: the same letter, the same export, each audited.
out=$("$B" letter --data "$T/d" --key-file "$T/key" --lang fr -o "$T/cli.pdf" "$id"); rc=$?
check "basira letter exits 0" "[ $rc -eq 0 ] && grep -q '\"event\":\"letter\"' <<<\"\$out\""
check "CLI letter names the clinic" "pdftotext '$T/cli.pdf' - 2>/dev/null | grep -q 'Centre de santé Al Amal'"
check "CLI letter = API letter (text)" "diff <(pdftotext '$T/l.pdf' - | grep -v '[0-9][0-9]:[0-9][0-9]') <(pdftotext '$T/cli.pdf' - | grep -v '[0-9][0-9]:[0-9][0-9]') >/dev/null"
check "letter file private" "[ \"\$(stat -c %a '$T/cli.pdf')\" = 600 ]"
"$B" letter --data "$T/d" --key-file "$T/key" 987654 >/dev/null 2>"$T/err"; rc=$?
check "letter of an unknown case fails" "[ $rc -eq 1 ] && grep -q not_found '$T/err'"
"$B" letter --data "$T/d" --key-file "$T/key" --lang de "$id" >/dev/null 2>&1; rc=$?
check "letter --lang de is a usage error" "[ $rc -eq 2 ]"
"$B" export --data "$T/d" --key-file "$T/key" > "$T/e.csv"; rc=$?
check "basira export csv" "[ $rc -eq 0 ] && head -1 '$T/e.csv' | grep -q patient_ref && grep -q PT-1 '$T/e.csv'"
"$B" export --data "$T/d" --key-file "$T/key" --format json -o "$T/e.json"; rc=$?
check "basira export json" "[ $rc -eq 0 ] && grep -q '\"basira-cases\"' '$T/e.json' && grep -q PT-1 '$T/e.json'"
"$B" export --data "$T/d" --key-file "$T/key" --format xml >/dev/null 2>&1; rc=$?
check "export --format xml is a usage error" "[ $rc -eq 2 ]"
audit=$("$B" audit list --data "$T/d" --key-file "$T/key")
n=$(grep -c '"actor":"cli-[^"]*","action":"export"' <<<"$audit")
check "CLI exports audited" "[ $n -ge 2 ]"
check "CLI letter audited as a case read" "grep -q '\"action\":\"case_read\"' <<<\"\$audit\""
exit $fail
