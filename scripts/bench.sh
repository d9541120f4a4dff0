#!/usr/bin/env bash
# Runs every benchmark under bench/ with the real services up; results print as tables, each
# figure beside its reference and whether its goal is met. Exits 0 whether or not goals are met
# (a missed goal is a finding, not a failure); a benchmark that crashes is listed at the end.
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
failed=()
for b in bench/bench_*.py bench/*/bench_*.py; do
  [ -f "$b" ] || continue
  echo "== $b"
  .venv/bin/python "$b" "$@" || failed+=("$b")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== benchmarks that did not complete: ${failed[*]}" >&2
fi
exit 0
