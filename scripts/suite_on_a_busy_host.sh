#!/usr/bin/env bash
# The suite N times in a row (default 5) with one core kept busy by another process, as
# issue 14 asks: `scripts/suite_on_a_busy_host.sh [N]`. Uses the service URLs CI uses
# unless they are set; stops at the first failing run and says which.
set -uo pipefail
cd "$(dirname "$0")/.."
export WATCHKEEPER_TEST_POSTGRES_URL="${WATCHKEEPER_TEST_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
export WATCHKEEPER_TEST_REDIS_URL="${WATCHKEEPER_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
export CI="${CI:-true}"
python3 -c 'while True: pass' &
busy=$!
trap 'kill $busy' EXIT
mkdir -p var
for run in $(seq "${1:-5}"); do
  started=$(date +%s)
  if ! make test > "var/suite-run-$run.log" 2>&1; then
    echo "run $run failed after $(( $(date +%s) - started )) s: see var/suite-run-$run.log"
    exit 1
  fi
  echo "run $run passed in $(( $(date +%s) - started )) s"
done
