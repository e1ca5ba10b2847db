#!/usr/bin/env bash
# Phones on the clinic network (issue 10, item 9): `basira serve` on an address other than
# loopback serves HTTPS with its own certificate (made once, fingerprint and QR printed, HSTS),
# plain HTTP there only with --insecure-http; loopback stays plain HTTP.
set -u
B=${BASIRA_CLI:?}
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
T=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap 'stop; rm -rf "$T"' EXIT
export BASIRA_ARGON2_FAST=1
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
port=$((22600 + RANDOM % 300))

head -c 32 /dev/urandom > "$T/key"; chmod 600 "$T/key"
printf 'a-long-test-password\n' > "$T/pw"
"$B" user add --data "$T/d" --key-file "$T/key" --role gp --password-file "$T/pw" gp1 >/dev/null

start() { # $1: log name; rest: extra options
  local log=$1; shift
  "$B" serve --data "$T/d" --key-file "$T/key" --access-log "$T/access.log" "$@" 2>"$T/$log" &
  pid=$!
  for _ in $(seq 100); do grep -q '"listening"' "$T/$log" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

start first.err --listen "0.0.0.0:$port"
check "serves on 0.0.0.0 without a certificate option" 'grep -q "\"tls\":true" "$T/first.err"'
fp1=$(sed -n 's/.*SHA-256 fingerprint: \([0-9A-F:]*\).*/\1/p' "$T/first.err")
check "prints the certificate's fingerprint" '[ ${#fp1} -eq 95 ]'
check "prints a QR code to pair phones" 'grep -q "█" "$T/first.err"'
check "key kept private" '[ "$(stat -c %a "$T/d/tls/key.pem")" = 600 ]'
hdr=$(curl -sk -D - -o /dev/null "https://127.0.0.1:$port/api/v1/health")
check "HTTPS answers" 'echo "$hdr" | grep -q "^HTTP/1.1 200"'
check "HSTS" 'echo "$hdr" | grep -qi "^Strict-Transport-Security: max-age="'
check "no plain HTTP there" '! curl -s -o /dev/null "http://127.0.0.1:$port/api/v1/health"'
stop

start second.err --listen "0.0.0.0:$port"
fp2=$(sed -n 's/.*SHA-256 fingerprint: \([0-9A-F:]*\).*/\1/p' "$T/second.err")
check "the same certificate on the next start" '[ -n "$fp1" ] && [ "$fp1" = "$fp2" ]'
stop

start insecure.err --listen "0.0.0.0:$port" --insecure-http
check "--insecure-http serves plain HTTP, with a warning" \
  'curl -s "http://127.0.0.1:$port/api/v1/health" | grep -q "\"ok\"" && grep -q "insecure-http" "$T/insecure.err"'
stop

start loop.err --listen "127.0.0.1:$port"
check "loopback stays plain HTTP" 'curl -s "http://127.0.0.1:$port/api/v1/health" | grep -q "\"ok\""'
stop
exit $fail
