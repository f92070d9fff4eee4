#!/usr/bin/env bash
# Set up (see setup.sh --test), then run ruff, mypy, import-linter and the whole test suite;
# every tool runs even when an earlier one failed, and the script fails if any of them did.
# "no tests collected" is a failure too. pytest runs last and, when all passed, its summary is
# the last line printed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1

failed=()
run() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@"
  local status=$?
  if [ "$name" = pytest ] && [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
  fi
  if [ "$status" -eq 0 ]; then
    [ "$name" = pytest ] || echo "== $name: passed"
  else
    echo "== $name: FAILED (exit $status)"
    failed+=("$name")
  fi
}

run ruff .venv/bin/ruff check plugin tests benchmarks
run mypy .venv/bin/mypy
run lint-imports .venv/bin/lint-imports
if command -v node >/dev/null 2>&1; then
  run forge-manifest node tools/forge-check/check.js manifest.yml
else
  echo "== forge-manifest: skipped, node not found"
fi
run pytest .venv/bin/python -m pytest -q "$@"

if [ ${#failed[@]} -gt 0 ]; then
  echo "== failed: ${failed[*]}" >&2
  exit 1
fi
