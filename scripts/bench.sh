#!/usr/bin/env bash
# Runs every benchmark under bench/ with the real services up; results print as tables.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/services
started=()
cleanup() {
  for ((i=${#started[@]}-1; i>=0; i--)); do scripts/services/"${started[$i]}".sh stop || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for svc in scripts/services/*.sh; do
  name=$(basename "$svc" .sh)
  started+=("$name")
  "$svc" start || exit 1
  # shellcheck disable=SC1090
  if [ -f "build/services/$name.env" ]; then source "build/services/$name.env"; fi
done
status=0
for b in bench/bench_*.py bench/*/bench_*.py; do
  [ -f "$b" ] || continue
  echo "== $b"
  .venv/bin/python "$b" "$@" || status=1
done
exit $status
