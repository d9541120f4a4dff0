#!/usr/bin/env bash
# A private NATS server with JetStream (Debian package nats-server) on 127.0.0.1, its stream store
# under build/nats, never the system service's /var/lib/nats.
#   nats.sh start    -> writes build/services/nats.env (SIMSMITH_TEST_NATS_URL)
#   nats.sh stop     -> SIGTERM, then removes build/nats
#   nats.sh status   -> exit 0 when it is running
# Port: SIMSMITH_NATS_PORT, default 14222 (4222, NATS's own default, is osmo-hlr's GSUP port).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
base="$top/build/nats"
host=127.0.0.1
port="${SIMSMITH_NATS_PORT:-14222}"
# shellcheck source=scripts/service-lib.sh
. "$top/scripts/service-lib.sh"
bin=$(command -v nats-server || true)

case "${1:-}" in
start)
  if [ -z "$bin" ]; then echo "nats.sh: nats-server not found (apt package nats-server, scripts/apt/nats.txt)" >&2; exit 1; fi
  pid_stop "$base/pid"
  port_free nats "$host:$port"
  rm -rf "$base"
  mkdir -p "$base/store" "$top/build/services"
  setsid "$bin" -js -a "$host" -p "$port" -sd "$base/store" >"$base/nats.log" 2>&1 </dev/null &
  echo $! >"$base/pid"
  wait_listening nats "$host:$port" "$base/pid" "$base/nats.log"
  echo "export SIMSMITH_TEST_NATS_URL='nats://$host:$port'" >"$top/build/services/nats.env"
  echo "nats: up on $host:$port (JetStream store $base/store)"
  ;;
stop)
  pid_stop "$base/pid"
  rm -rf "$base"
  echo "nats: stopped"
  ;;
status)
  if pid_running "$base/pid"; then echo "nats: running (pid $(cat "$base/pid"))"; else echo "nats: not running"; exit 1; fi
  ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
