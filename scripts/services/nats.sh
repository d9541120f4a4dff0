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
bin=$(command -v nats-server || true)

running() { [ -f "$base/pid" ] && kill -0 "$(cat "$base/pid")" 2>/dev/null; }

stop() {
  if [ -f "$base/pid" ]; then
    pid=$(cat "$base/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$base/pid"
  fi
}

case "${1:-}" in
start)
  if [ -z "$bin" ]; then echo "nats.sh: nats-server not found (apt package nats-server, scripts/apt/nats.txt)" >&2; exit 1; fi
  stop
  rm -rf "$base"
  mkdir -p "$base/store" "$top/build/services"
  setsid "$bin" -js -a "$host" -p "$port" -sd "$base/store" >"$base/nats.log" 2>&1 </dev/null &
  echo $! >"$base/pid"
  for _ in $(seq 100); do
    if ss -ltn 2>/dev/null | grep -q "$host:$port "; then break; fi
    if ! running; then cat "$base/nats.log" >&2; exit 1; fi
    sleep 0.05
  done
  ss -ltn | grep -q "$host:$port " || { echo "nats.sh: port $port not listening" >&2; cat "$base/nats.log" >&2; exit 1; }
  echo "export SIMSMITH_TEST_NATS_URL='nats://$host:$port'" >"$top/build/services/nats.env"
  echo "nats: up on $host:$port (JetStream store $base/store)"
  ;;
stop)
  stop
  rm -rf "$base"
  echo "nats: stopped"
  ;;
status)
  if running; then echo "nats: running (pid $(cat "$base/pid"))"; else echo "nats: not running"; exit 1; fi
  ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
