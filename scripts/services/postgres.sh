#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a private Unix socket, never a system cluster.
#   postgres.sh start   -> writes build/services/postgres.env (SIMSMITH_TEST_PG_URL)
#   postgres.sh stop
# As root, initdb and the server run as the `postgres` user, which must be able to enter every
# directory above the data directory. A checkout under a root user's home (mode 0700) is not
# reachable for it, so the cluster then lives in a directory of its own under /tmp (mktemp -d,
# owned by postgres); build/pg.location records where, for `stop`. As another user the cluster
# stays in build/pg. The socket is private (listen_addresses=''), so the port number only names
# the socket file and two checkouts' clusters coexist.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
port="${SIMSMITH_PG_PORT:-54329}"
location="$top/build/pg.location"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then echo "postgres.sh: PostgreSQL server binaries not found (apt package postgresql)" >&2; exit 1; fi
run=()
if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi

stop_cluster() {  # $1: the cluster's base directory
  local base="$1"
  if [ -f "$base/data/postmaster.pid" ]; then
    "${run[@]}" "$bindir/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null 2>&1 \
      || "${run[@]}" "$bindir/pg_ctl" -D "$base/data" -m immediate stop >/dev/null 2>&1 || true
    echo "postgres: stopped"
  fi
}

previous() {  # the base directory of the cluster this checkout started last, if any
  if [ -f "$location" ]; then cat "$location"; elif [ -d "$top/build/pg" ]; then echo "$top/build/pg"; fi
}

case "${1:-}" in
start)
  old=$(previous)
  if [ -n "$old" ]; then
    stop_cluster "$old"
    case "$old" in /tmp/simsmith-pg.*) rm -rf "$old" ;; esac
  fi
  rm -rf "$top/build/pg" "$location"
  mkdir -p "$top/build/services"
  if [ "$(id -u)" -eq 0 ]; then
    base=$(mktemp -d /tmp/simsmith-pg.XXXXXX)
    chmod 0755 "$base"
    mkdir -p "$base/sock"
    chown -R postgres "$base"
    echo "$base" >"$location"
  else
    base="$top/build/pg"
    mkdir -p "$base/sock"
  fi
  "${run[@]}" "$bindir/initdb" -D "$base/data" -A trust -U simsmith -E UTF8 --no-sync >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log" >&2; exit 1; }
  "${run[@]}" "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 30 \
    -o "-k $base/sock -p $port -c listen_addresses='' -c max_connections=200" start >/dev/null \
    || { cat "$base/server.log" >&2; exit 1; }
  "${run[@]}" "$bindir/createdb" -h "$base/sock" -p "$port" -U simsmith simsmith
  echo "export SIMSMITH_TEST_PG_URL='postgresql+psycopg://simsmith@/simsmith?host=$base/sock&port=$port'" \
    >"$top/build/services/postgres.env"
  echo "postgres: up on $base/sock port $port"
  ;;
stop)
  old=$(previous)
  if [ -n "$old" ]; then
    stop_cluster "$old"
    case "$old" in /tmp/simsmith-pg.*) rm -rf "$old" ;; esac
  fi
  rm -f "$location"
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
