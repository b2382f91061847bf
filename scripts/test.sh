#!/usr/bin/env bash
# `npm test`: type-check, start the test servers (scripts/services/all.sh) and make sure Chromium
# (scripts/services/chromium.sh) and qemu-user (scripts/services/qemu.sh) are there, then every test
# (unit and integration) with bun test. Prints one closing line "N passed, N failed, N skipped"
# read from bun's JUnit report.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
if [ ! -x node_modules/.bin/bun ]; then npm install --no-audit --no-fund; fi

echo "== type-check"
tsc --noEmit -p .
# The dashboard's browser code: the DOM's types, which clash with Bun's, so a tsconfig of its own.
tsc --noEmit -p src/http/dashboard/page

echo "== services"
# Real PostgreSQL, QuestDB and Pocketbase on 127.0.0.1 (scripts/services/). Left running after the tests so the
# next run reuses them (`scripts/services/all.sh stop` stops them). Each server that is up exports
# its TICKSYNC_TEST_* variable; with CI=true a server that does not start fails the run, without
# CI its tests skip.
services_status=0
# CI runs in a fresh clone: stop what it started when it is done. Locally they stay up for reuse.
if [ "${CI:-}" = true ]; then trap 'bash scripts/services/all.sh stop >/dev/null 2>&1 || true' EXIT; fi
services_out=$(bash scripts/services/all.sh start) || services_status=$?
while IFS='=' read -r name value; do
  case "$name" in TICKSYNC_TEST_*) export "$name=$value"; echo "$name=$value" ;; esac
done <<<"$services_out"
if [ "$services_status" != 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: CI=true and the test servers did not start (scripts/services/all.sh start exited $services_status; see the messages above and .services/*/*.log)" >&2
    exit 1
  fi
  echo "WARNING: not every test server started (see above); the tests that need one are skipped" >&2
fi

# Tools the tests drive, each installed with apt-get by its script when missing, its path exported:
# headless Chromium (test/dashboard.test.ts, test/api-docs.test.ts) and qemu-user for the
# linux-arm64 release executable (test/release.test.ts). With CI=true a missing one fails the run;
# without CI its tests skip with a warning.
need_tool() {
  local var=$1 script=$2 what=$3 hint=$4 path
  if path=$(bash "scripts/services/$script" ensure); then
    export "$var=$path"
    echo "$var=$path"
  elif [ "${CI:-}" = true ]; then
    echo "FAIL: CI=true and $what is not available (scripts/services/$script ensure)" >&2
    exit 1
  else
    echo "WARNING: no $what: those tests are skipped ($hint)" >&2
  fi
}
need_tool TICKSYNC_TEST_CHROMIUM chromium.sh "Chromium for the browser tests" "apt-get install -y chromium"
need_tool TICKSYNC_TEST_QEMU qemu.sh "qemu-aarch64 for the linux-arm64 tests" "apt-get install -y qemu-user libc6-arm64-cross"

# Tables earlier local runs left in QuestDB (each test store has its own t_… prefix).
bash scripts/services/questdb.sh drop-test-tables || true

echo "== bun test"
mkdir -p test-artifacts
report=test-artifacts/junit.xml
rm -f "$report"
status=0
# The timeout and the rest of the test settings are bunfig.toml's (test/preload.ts), as for a
# plain `bun test`; only the report is this script's.
bun test --reporter=junit --reporter-outfile="$report" "$@" || status=$?
# The junit reporter replaces the console summary; print failures and the totals ourselves.
bun scripts/junit-summary.ts "$report" || status=$((status == 0 ? 1 : status))
exit $status
