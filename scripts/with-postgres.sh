#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests (Debian's postgresql-15 package), reachable only
# through a Unix socket in its own temporary directory, so it needs no free TCP port and never
# meets another test's server. fsync is off: the tests check logic, not durability.
#
#   scripts/with-postgres.sh CMD [ARGS…]   start one, run CMD with PARLEY_TEST_PG_URL set, stop
#                                          it again (also when CMD fails or is interrupted)
#   scripts/with-postgres.sh start LINK    start one and make LINK a symbolic link to its
#                                          directory: postgres://parley@/postgres?host=LINK
#                                          reaches it (CTest's fixture: a URL known in advance)
#   scripts/with-postgres.sh stop LINK     stop the one LINK points to, remove it and LINK
#
# The server's directory is always under /tmp (the postgres user may not be allowed into the
# build tree). PARLEY_TEST_PG_URL names the maintenance database `postgres` (user `parley`, trust auth);
# tests create a database of their own on it. initdb refuses to run as root: as root the
# server runs as the `postgres` user (created by the package).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x "$PG_BIN/initdb" ]]; then
  echo "with-postgres: $PG_BIN/initdb not found (apt-get install postgresql-15)" >&2
  exit 1
fi

as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url_of() { echo "postgres://parley@/postgres?host=$1"; }

# start_pg: prints the directory of a freshly started server.
start_pg() {
  local dir
  dir=$(mktemp -d /tmp/parley-pg.XXXXXX)
  chmod 755 "$dir"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir"
  as_owner "$PG_BIN/initdb" -D "$dir/data" -U parley --auth=trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; rm -rf "$dir"; return 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { cat "$dir/server.log" >&2; rm -rf "$dir"; return 1; }
  echo "$dir"
}

stop_pg() {
  local dir=$1
  [[ -n "$dir" && -d "$dir" ]] || return 0
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start)
    link=${2:?usage: with-postgres.sh start LINK}
    [[ -L "$link" ]] && stop_pg "$(readlink "$link")"  # a server left over by an interrupted run
    rm -f "$link"
    dir=$(start_pg)
    ln -s "$dir" "$link"
    echo "PostgreSQL up: $(url_of "$link")"
    ;;
  stop)
    link=${2:?usage: with-postgres.sh stop LINK}
    [[ -L "$link" ]] && stop_pg "$(readlink "$link")"
    rm -f "$link"
    ;;
  "")
    echo "usage: with-postgres.sh CMD [ARGS…] | start LINK | stop LINK" >&2
    exit 2
    ;;
  *)
    dir=$(start_pg)
    trap 'stop_pg "$dir"' EXIT
    trap 'exit 130' INT TERM
    export PARLEY_TEST_PG_URL
    PARLEY_TEST_PG_URL=$(url_of "$dir")
    "$@"
    ;;
esac
