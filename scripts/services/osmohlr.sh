#!/usr/bin/env bash
# A private osmo-hlr (Debian package osmo-hlr) on 127.0.0.2 with its own config and SQLite DB
# under build/osmohlr, never /etc/osmocom or /var/lib/osmocom.
#   osmohlr.sh start   -> writes build/services/osmohlr.env (host, CTRL/GSUP/VTY ports, DB path)
#   osmohlr.sh stop    -> SIGTERM, then removes build/osmohlr
#   osmohlr.sh status  -> exit 0 when it is running
# Ports are fixed by osmo-hlr (GSUP 4222, VTY 4258, CTRL 4259); only the address can change.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
base="$top/build/osmohlr"
host="${SIMSMITH_OSMOHLR_HOST:-127.0.0.2}"
# shellcheck source=scripts/service-lib.sh
. "$top/scripts/service-lib.sh"
bin=$(command -v osmo-hlr || true)

case "${1:-}" in
start)
  if [ -z "$bin" ]; then echo "osmohlr.sh: osmo-hlr not found (apt package osmo-hlr, scripts/apt/osmo.txt)" >&2; exit 1; fi
  pid_stop "$base/pid"
  port_free osmohlr "$host:4259"
  rm -rf "$base"
  mkdir -p "$base" "$top/build/services"
  cat >"$base/osmo-hlr.cfg" <<CFG
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging level main notice
 logging level db notice
 logging level auc notice
 logging level linp error
line vty
 bind $host
ctrl
 bind $host
hlr
 gsup
  bind ip $host
CFG
  setsid "$bin" -c "$base/osmo-hlr.cfg" -l "$base/hlr.db" >"$base/osmo-hlr.log" 2>&1 </dev/null &
  echo $! >"$base/pid"
  wait_listening osmohlr "$host:4259" "$base/pid" "$base/osmo-hlr.log"
  {
    echo "export SIMSMITH_TEST_OSMOHLR_HOST='$host'"
    echo "export SIMSMITH_TEST_OSMOHLR_CTRL_PORT=4259"
    echo "export SIMSMITH_TEST_OSMOHLR_GSUP_PORT=4222"
    echo "export SIMSMITH_TEST_OSMOHLR_VTY_PORT=4258"
    echo "export SIMSMITH_TEST_OSMOHLR_DB='$base/hlr.db'"
  } >"$top/build/services/osmohlr.env"
  echo "osmohlr: up on $host (CTRL 4259, GSUP 4222, VTY 4258), db $base/hlr.db"
  ;;
stop)
  pid_stop "$base/pid"
  rm -rf "$base"
  echo "osmohlr: stopped"
  ;;
status)
  if pid_running "$base/pid"; then echo "osmohlr: running (pid $(cat "$base/pid"))"; else echo "osmohlr: not running"; exit 1; fi
  ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
