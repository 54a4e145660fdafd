#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster of its own, and stops and removes the
# cluster afterwards (also when the command fails or is interrupted).
#
#   scripts/with-postgres.sh COMMAND [ARG…]
#
# The cluster: `initdb` in a new temporary folder (owned by the `postgres` user, or `nobody`:
# initdb refuses root), trust authentication, no TCP listener — only a unix socket in that
# folder. The command gets its address in CONFINE_TEST_POSTGRES_URL
# (postgres://confine@localhost:PORT/confine?host=FOLDER), a superuser that may create a
# database per test. PostgreSQL's server binaries come from Debian's `postgresql` package,
# installed when missing (as root; otherwise the tests that need it skip and say so).
# WITH_POSTGRES=0 runs the command without a cluster.
set -euo pipefail

if [ "${WITH_POSTGRES:-1}" = "0" ]; then exec "$@"; fi

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

bin=$(find_bin || true)
if [ -z "$bin" ] && [ "$(id -u)" -eq 0 ]; then
  "$(dirname "$0")/ensure-deps.sh" postgresql >&2 || true
  bin=$(find_bin || true)
fi
if [ -z "$bin" ]; then
  echo "with-postgres: PostgreSQL's server (initdb, pg_ctl) is not installed; the PostgreSQL tests will skip (install: apt-get install postgresql)" >&2
  exec "$@"
fi

folder=$(mktemp -d /tmp/confine-pg.XXXXXX)
owner=postgres
id "$owner" >/dev/null 2>&1 || owner=nobody
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$owner" -- "$@"
  else
    "$@"
  fi
}
[ "$(id -u)" -eq 0 ] && chown "$owner" "$folder"
chmod 0755 "$folder"

stop() {
  as_owner "$bin/pg_ctl" -D "$folder/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$folder"
}
trap stop EXIT
trap 'exit 130' INT TERM

# A free port number only names the socket file (no TCP listener); 5432 unless taken in the folder.
port=${CONFINE_TEST_POSTGRES_PORT:-5432}
as_owner "$bin/initdb" -D "$folder/data" -U confine --auth=trust -E UTF8 --no-locale >"$folder/initdb.log" 2>&1 || {
  echo "with-postgres: initdb failed:" >&2; cat "$folder/initdb.log" >&2; exit 1; }
as_owner "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 \
  -o "-k $folder -p $port -c listen_addresses='' -c max_connections=1000 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || {
  echo "with-postgres: the server did not start:" >&2; cat "$folder/server.log" >&2; exit 1; }
"$bin/psql" -h "$folder" -p "$port" -U confine -d postgres -qAt -c "CREATE DATABASE confine" >/dev/null

export CONFINE_TEST_POSTGRES_URL="postgres://confine@localhost:$port/confine?host=$folder"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $CONFINE_TEST_POSTGRES_URL (removed at the end)" >&2
set +e
"$@"
status=$?
set -e
exit $status
