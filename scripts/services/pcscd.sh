#!/usr/bin/env bash
# A private pcscd with vsmartcard-vpcd virtual readers for the card tests; edits nothing in /etc.
#   pcscd.sh start  -> 2 vpcd readers x 2 slots (TCP 35963-35966 on 127.0.0.1 for the virtual
#                      cards), writes build/services/pcscd.env (SIMSMITH_TEST_PCSC=1, ports, names)
#   pcscd.sh stop
# One pcscd per machine (its socket path is compiled in): a pcscd this script did not start is
# reported, never killed.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
base="$top/build/pcscd"
pidfile="$base/pcscd.pid"
lib=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
channels=(0x8C7B 0x8C7D)   # each entry: 2 slots on ports CHANNELID and CHANNELID+1
ports=(35963 35964 35965 35966)
friendly=("Virtual PCD A" "Virtual PCD B")   # distinct names: equal ones collide in pcscd
names=("Virtual PCD A 00 00" "Virtual PCD A 00 01" "Virtual PCD B 00 00" "Virtual PCD B 00 01")

alive() {  # pid is running and not a zombie
  [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != "Z" ]
}

stop_ours() {
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if alive "$pid" && grep -q pcscd "/proc/$pid/comm" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
      rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
    fi
    echo "pcscd: stopped"
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
start)
  command -v pcscd >/dev/null || { echo "pcscd.sh: pcscd not installed (apt: $(cat scripts/apt/cards.txt | grep -v '^#'))" >&2; exit 1; }
  [ -f "$lib" ] || { echo "pcscd.sh: $lib missing (apt package vsmartcard-vpcd)" >&2; exit 1; }
  stop_ours
  other=""
  for p in $(pgrep -x pcscd || true); do alive "$p" && other="$other $p"; done   # zombies linger ~2 s
  if [ -n "$other" ]; then
    echo "pcscd.sh: another pcscd (pid$other) is running; stop it first (one pcscd per machine)" >&2
    exit 1
  fi
  rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid /run/pcscd/pcscd.pub   # stale after a SIGKILL
  rm -rf "$base"; mkdir -p "$base/conf" "$base/lib" "$top/build/services"
  for i in "${!channels[@]}"; do
    # each reader entry needs its own copy of the driver, or every reader stays empty
    cp "$lib" "$base/lib/libifdvpcd$i.so"
    cat >"$base/conf/vpcd$i" <<CONF
FRIENDLYNAME "${friendly[$i]}"
DEVICENAME /dev/null:${channels[$i]}
LIBPATH $base/lib/libifdvpcd$i.so
CHANNELID ${channels[$i]}
CONF
  done
  setsid pcscd -f -c "$base/conf" >"$base/pcscd.log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  ok=0
  for _ in $(seq 1 100); do   # never connect() to the ports: vpcd would take it for a card
    listening=$(ss -ltnH 2>/dev/null | awk '{print $4}')
    n=0; for p in "${ports[@]}"; do grep -qE "[:.]$p\$" <<<"$listening" && n=$((n+1)); done
    if [ "$n" -eq "${#ports[@]}" ]; then ok=1; break; fi
    alive "$(cat "$pidfile")" || break
    sleep 0.05
  done
  if [ "$ok" -ne 1 ]; then echo "pcscd.sh: vpcd ports not listening" >&2; cat "$base/pcscd.log" >&2; stop_ours; exit 1; fi
  {
    echo "export SIMSMITH_TEST_PCSC=1"
    echo "export SIMSMITH_VPCD_HOST=127.0.0.1"
    echo "export SIMSMITH_VPCD_PORTS='${ports[*]}'"
    echo "export SIMSMITH_VPCD_READERS='$(IFS='|'; echo "${names[*]}")'"
  } >"$top/build/services/pcscd.env"
  echo "pcscd: up (pid $(cat "$pidfile")), vpcd slots on ports ${ports[*]}"
  ;;
stop)
  stop_ours
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
