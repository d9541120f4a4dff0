#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a private Unix socket inside build/, never a system cluster.
#   postgres.sh start   -> writes build/services/postgres.env (SIMSMITH_TEST_PG_URL)
#   postgres.sh stop
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
base="$top/build/pg"
port=54329
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then echo "postgres.sh: PostgreSQL server binaries not found (apt package postgresql)" >&2; exit 1; fi
run=()
if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi

case "${1:-}" in
start)
  if [ -f "$base/data/postmaster.pid" ]; then "${run[@]}" "$bindir/pg_ctl" -D "$base/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$base"
  mkdir -p "$base/sock" "$top/build/services"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$base"; fi
  "${run[@]}" "$bindir/initdb" -D "$base/data" -A trust -U simsmith -E UTF8 --no-sync >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log" >&2; exit 1; }
  "${run[@]}" "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 30 \
    -o "-k $base/sock -p $port -c listen_addresses='' -c max_connections=200" start >/dev/null \
    || { cat "$base/server.log" >&2; exit 1; }
  "${run[@]}" "$bindir/createdb" -h "$base/sock" -p $port -U simsmith simsmith
  echo "export SIMSMITH_TEST_PG_URL='postgresql+psycopg://simsmith@/simsmith?host=$base/sock&port=$port'" \
    >"$top/build/services/postgres.env"
  echo "postgres: up on $base/sock port $port"
  ;;
stop)
  if [ -f "$base/data/postmaster.pid" ]; then
    "${run[@]}" "$bindir/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null && echo "postgres: stopped"
  fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
