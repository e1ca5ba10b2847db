# lib.sh - shared by the hub tests: a private PostgreSQL, clinic nodes and a hub.
# Source it after setting T (a temporary folder) and B (the basira program).
# Everything it starts is stopped by hub_cleanup (call it from an EXIT trap).

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || { echo "SKIP: PostgreSQL server (initdb) not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
export BASIRA_ARGON2_FAST=1
PIDS=()
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# PostgreSQL refuses to run as root: run it as an unprivileged user then.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

# pg_start PORT: a fresh cluster in $T/pg, listening only on a socket in $T/pgsock.
pg_start() {
  PGPORT=$1
  mkdir -p "$T/pg" "$T/pgsock"
  [ "$(id -u)" -eq 0 ] && chown nobody "$T/pg" "$T/pgsock" && chmod 755 "$T"
  as_pg "$PGBIN/initdb" -D "$T/pg" -A trust -U basira --no-sync -E UTF8 >"$T/initdb.log" 2>&1 ||
    { cat "$T/initdb.log"; echo "FAIL initdb"; exit 1; }
  pg_ctl_start
  DB="host=$T/pgsock port=$PGPORT user=basira dbname=postgres"
}
pg_ctl_start() {
  as_pg "$PGBIN/pg_ctl" -D "$T/pg" -l "$T/pg/server.log" -w -t 30 \
    -o "-k $T/pgsock -p $PGPORT -c listen_addresses='' -c fsync=on -c max_connections=200" start >/dev/null ||
    { cat "$T/pg/server.log"; echo "FAIL pg_ctl start"; exit 1; }
}
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$T/pg" -m fast -w stop >/dev/null 2>&1; }
psql_q() { "$PGBIN/psql" -X -A -t -q "$DB" -c "$1"; }

# hub_start PORT [options]: `basira hub` serving on 127.0.0.1:PORT.
hub_start() {
  HUB_PORT=$1; shift
  "$B" hub --db "$DB" --listen 127.0.0.1:$HUB_PORT "$@" 2>>"$T/hub.err" &
  HUB_PID=$!
  PIDS+=("$HUB_PID")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HUB_PORT/health" >/dev/null && return 0; sleep 0.1; done
  cat "$T/hub.err"; echo "FAIL hub did not start"; exit 1
}
HUB() { echo "http://127.0.0.1:$HUB_PORT"; }
# hub_login USER PASSWORD: sign in at the hub (session cookie in $T/hub-USER.cj); prints the status.
hub_login() {
  curl -s -o "$T/hub-$1.login" -D "$T/hub-$1.headers" -w '%{http_code}' -c "$T/hub-$1.cj" \
    -H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$(HUB)/api/v1/session"
}
# hcurl USER [curl args...]: curl with USER's hub session and its CSRF token.
hcurl() {
  local u=$1; shift
  local csrf; csrf=$(awk '$6 == "basira_csrf" {print $7}' "$T/hub-$u.cj" 2>/dev/null)
  curl -s -b "$T/hub-$u.cj" -H "X-CSRF-Token: $csrf" "$@"
}

# node_new NAME: data folder $T/NAME with a GP account gp1.
node_new() {
  (umask 077 && head -c 32 /dev/urandom > "$T/$1.key")
  printf 'a-long-test-password\n' > "$T/pw"
  "$B" user add --data "$T/$1" --key-file "$T/$1.key" --role gp --password-file "$T/pw" gp1 >/dev/null
}
# node_serve NAME PORT [extra serve options]: the clinic node's API, signed in as gp1.
node_serve() {
  local n=$1 port=$2; shift 2
  "$B" serve --data "$T/$n" --key-file "$T/$n.key" --listen 127.0.0.1:$port --model "$MODEL" \
    --access-log /dev/null "$@" 2>>"$T/$n.serve.err" &
  PIDS+=("$!")
  eval "NODE_PID_$n=$!"
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
  curl -s -c "$T/$n.cj" -H 'Content-Type: application/json' \
    -d '{"username":"gp1","password":"a-long-test-password"}' "http://127.0.0.1:$port/api/v1/session" >/dev/null
  eval "NODE_PORT_$n=$port"
}
api() { # api NODE METHOD PATH [curl args...]
  local n=$1 m=$2 p=$3; shift 3
  local port; eval "port=\$NODE_PORT_$n"
  local csrf; csrf=$(awk '$6 ~ /csrf/ {print $7}' "$T/$n.cj")
  curl -s -b "$T/$n.cj" -H "X-CSRF-Token: $csrf" -X "$m" "$@" "http://127.0.0.1:$port/api/v1$p"
}
# new_case NODE REF REMOTE(true|false) [PHOTO]: prints the case id.
new_case() {
  local id
  id=$(api "$1" POST /cases -H 'Content-Type: application/json' \
    -d "{\"patient_ref\":\"$2\",\"age\":61,\"sex\":\"female\",\"body_site\":\"back\",\"history\":{\"changed\":true},\"consent\":{\"care\":true,\"research\":false,\"remote_review\":$3,\"recorded_by\":\"gp1\"}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  if [ -n "${4:-}" ]; then
    api "$1" POST "/cases/$id/images" -H 'Content-Type: image/jpeg' --data-binary "@$4" >/dev/null
  fi
  echo "$id"
}
sync_once() { # sync_once NODE [options]
  local n=$1; shift
  "$B" sync --data "$T/$n" --key-file "$T/$n.key" --hub "$(HUB)" --once "$@"
}
enrol() { # enrol NODE
  local tok
  tok=$("$B" hub enrol --db "$DB" "$1" | tail -1)
  "$B" sync --data "$T/$1" --key-file "$T/$1.key" --hub "$(HUB)" --enrol "$tok" >/dev/null
}
hub_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -d "$T/pg" ] && pg_stop
  rm -rf "$T"
}
