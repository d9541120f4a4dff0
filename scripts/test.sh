#!/usr/bin/env bash
# Starts the real services (scripts/services/*.sh), runs ruff, mypy, lint-imports (the import
# graph contracts of pyproject.toml) and pytest, and stops every service it started, even when a
# step fails. Extra arguments go to pytest.
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
  rm -f "build/services/$name.env"
  started+=("$name")
  if ! "$svc" start; then echo "test.sh: could not start service $name" >&2; exit 1; fi
  # shellcheck disable=SC1090
  if [ -f "build/services/$name.env" ]; then source "build/services/$name.env"; fi
done
# The full suite must not silently skip a real service (PostgreSQL, SoftHSM2, pcscd, osmo-hlr).
export SIMSMITH_REQUIRE_SERVICES=1

status=0
echo "== ruff";   .venv/bin/ruff check . || status=1
echo "== mypy";   .venv/bin/mypy || status=1
echo "== import graph"; .venv/bin/lint-imports || status=1
echo "== pytest"; .venv/bin/pytest "$@" || status=1
exit $status
