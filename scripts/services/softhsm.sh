#!/usr/bin/env bash
# A private SoftHSM2 token store inside build/, never the system one (/var/lib/softhsm).
#   softhsm.sh start   -> writes build/services/softhsm.env (SOFTHSM2_CONF, module, token, PIN)
#   softhsm.sh stop    -> removes the token store
# SoftHSM2 is a library, not a daemon: "start" only creates the config and initialises a token.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
base="$top/build/softhsm"
label="simsmith-test"
so_pin="5678"
pin="1234"
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
  if [ -f "$m" ]; then module="$m"; break; fi
done
if [ -z "$module" ]; then echo "softhsm.sh: libsofthsm2.so not found (apt package softhsm2)" >&2; exit 1; fi

case "${1:-}" in
start)
  rm -rf "$base"
  mkdir -p "$base/tokens" "$top/build/services"
  chmod 700 "$base"
  cat >"$base/softhsm2.conf" <<CONF
directories.tokendir = $base/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
  export SOFTHSM2_CONF="$base/softhsm2.conf"
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >"$base/init.log" 2>&1 \
    || { cat "$base/init.log" >&2; exit 1; }
  {
    echo "export SOFTHSM2_CONF='$base/softhsm2.conf'"
    echo "export SIMSMITH_TEST_PKCS11_MODULE='$module'"
    echo "export SIMSMITH_TEST_PKCS11_TOKEN='$label'"
    echo "export SIMSMITH_TEST_PKCS11_PIN='$pin'"
  } >"$top/build/services/softhsm.env"
  echo "softhsm: token '$label' in $base/tokens"
  ;;
stop)
  rm -rf "$base"
  echo "softhsm: token store removed"
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
