# Shared by the scripts/services/*.sh that run a daemon of their own under build/<name>:
# a pid file, a stop that escalates, a wait for the listening port. Sourced, never run.

# pid_running PIDFILE -> exit 0 while the process it names lives
pid_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# pid_stop PIDFILE -> SIGTERM, up to 5 s for it to go, then SIGKILL; the pid file removed
pid_stop() {
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# port_free NAME HOST:PORT -> fails, saying so, when something already listens there (another
# copy of the service, from another checkout): the wait below would take it for ours
port_free() {
  if ss -ltn 2>/dev/null | grep -q "$2 "; then
    echo "$1: $2 is already in use (another $1, or another program: stop it or pick another address)" >&2
    return 1
  fi
}

# wait_listening NAME HOST:PORT PIDFILE LOGFILE -> up to 5 s for a TCP listener on HOST:PORT;
# fails (the daemon's log on stderr) if the process died or the port never opened
wait_listening() {
  local name=$1 addr=$2 pidfile=$3 log=$4
  for _ in $(seq 100); do
    if ss -ltn 2>/dev/null | grep -q "$addr "; then return 0; fi
    if ! pid_running "$pidfile"; then echo "$name: exited at start" >&2; cat "$log" >&2; return 1; fi
    sleep 0.05
  done
  echo "$name: $addr not listening" >&2
  cat "$log" >&2
  return 1
}
