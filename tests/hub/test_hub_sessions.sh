#!/usr/bin/env bash
# Hub users sign in as on the clinic node (the rules of basira/session.h), with a real
# PostgreSQL and hub: the session cookie (HttpOnly, SameSite=Strict) and the CSRF cookie;
# no session: 401; a change without the CSRF token: 403; sign-out ends the session; a
# session unused for --session-idle seconds ends; the lockout per account (429 with
# Retry-After, even with the right password, whatever the address) and no HTTP Basic.
# Usage: test_hub_sessions.sh
set -u
B=${BASIRA_CLI:?}
T=$(mktemp -d)
trap 'hub_cleanup' EXIT
. "$(dirname "$0")/lib.sh"
base=${HUB_TEST_PORT_BASE:-$((26500 + (RANDOM % 90) * 10))}

pg_start $base
"$B" hub init --db "$DB" >/dev/null
printf 'derm-password-1\n' > "$T/dpw"
"$B" hub user add --db "$DB" --role dermatologist --password-file "$T/dpw" drA >/dev/null
"$B" hub user add --db "$DB" --role dermatologist --password-file "$T/dpw" drL >/dev/null
# 10 s, not less: on a loaded 2-core CI machine a psql or curl start-up between two uses
# of the session can take seconds, and a shorter idle time ends the session mid-test.
hub_start $((base + 1)) --session-idle 10
check "no session: 401" "[ \$(curl -s -o /dev/null -w '%{http_code}' '$(HUB)/api/v1/cases') = 401 ]"
check "HTTP Basic is not accepted any more" "[ \$(curl -s -o /dev/null -w '%{http_code}' -u drA:derm-password-1 '$(HUB)/api/v1/cases') = 401 ]"
check "sign in (200)" "[ \$(hub_login drA derm-password-1) = 200 ]"
check "the session cookie is HttpOnly, SameSite=Strict, for the API only" "grep -i '^Set-Cookie: basira_session=' '$T/hub-drA.headers' | grep -q 'Path=/api/v1; Max-Age=[0-9]*; HttpOnly; SameSite=Strict'"
check "the CSRF cookie is readable by the page, SameSite=Strict" "grep -i '^Set-Cookie: basira_csrf=' '$T/hub-drA.headers' | grep -v HttpOnly | grep -q 'SameSite=Strict'"
check "the answer carries the CSRF token and the idle timeout" "python3 -c 'import json; j=json.load(open(\"$T/hub-drA.login\")); assert j[\"role\"]==\"dermatologist\" and len(j[\"csrf_token\"])==64 and j[\"idle_timeout_s\"]==10, j'"
check "only the token's hash is stored" "! grep -q \"\$(awk '\$6 == \"basira_session\" {print \$7}' '$T/hub-drA.cj')\" <(psql_q 'SELECT token_hash FROM hub_sessions')"
check "the session works" "[ \$(hcurl drA -o /dev/null -w '%{http_code}' '$(HUB)/api/v1/cases') = 200 ]"
check "who am I" "hcurl drA '$(HUB)/api/v1/session' | grep -q '\"username\":\"drA\"'"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/hub-drA.cj" -H 'Content-Type: application/json' -d '{"plan":"reassure"}' "$(HUB)/api/v1/cases/n1/1/reply")
check "a change without the CSRF token: 403" "[ '$code' = 403 ]"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/hub-drA.cj" -H 'X-CSRF-Token: 0000000000000000000000000000000000000000000000000000000000000000' -d '{"plan":"reassure"}' "$(HUB)/api/v1/cases/n1/1/reply")
check "with a wrong one: 403" "[ '$code' = 403 ]"
check "with the right one it goes through to the case (404: no such case)" "[ \$(hcurl drA -o /dev/null -w '%{http_code}' -d '{\"plan\":\"reassure\"}' '$(HUB)/api/v1/cases/n1/1/reply') = 404 ]"
sleep 12
check "unused for longer than --session-idle: signed out (401)" "hcurl drA '$(HUB)/api/v1/cases' | grep -q 'without activity'"
check "and the session is gone" "[ \$(hcurl drA -o /dev/null -w '%{http_code}' '$(HUB)/api/v1/cases') = 401 ] && [ \$(psql_q 'SELECT count(*) FROM hub_sessions') -eq 0 ]"
hub_login drA derm-password-1 >/dev/null
check "sign out (200)" "[ \$(hcurl drA -o /dev/null -w '%{http_code}' -X DELETE '$(HUB)/api/v1/session') = 200 ]"
check "signed out: the cookie no longer opens anything" "[ \$(hcurl drA -o /dev/null -w '%{http_code}' '$(HUB)/api/v1/cases') = 401 ]"
# Lockout per account: 5 failures in 15 minutes, then even the right password waits.
for i in 1 2 3 4 5; do hub_login drL wrong-password >/dev/null; done
check "the 6th attempt is locked out (429), even with the right password" "[ \$(hub_login drL derm-password-1) = 429 ]"
check "with Retry-After" "grep -qi '^Retry-After: [0-9]' '$T/hub-drL.headers'"
check "another account is not locked" "[ \$(hub_login drA derm-password-1) = 200 ]"
psql_q "UPDATE hub_login_failures SET window_start = window_start - 901 WHERE username = 'drL'" >/dev/null
check "after the window the account signs in again" "[ \$(hub_login drL derm-password-1) = 200 ] && [ \$(psql_q \"SELECT count(*) FROM hub_login_failures WHERE username = 'drL'\") -eq 0 ]"
exit $fail
