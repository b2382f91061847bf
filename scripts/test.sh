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

# Headless Chromium for the dashboard tests (test/dashboard.test.ts): installed with apt-get when
# missing. With CI=true a missing browser fails the run; without CI those tests skip with a warning.
if chromium_path=$(bash scripts/services/chromium.sh ensure); then
  export TICKSYNC_TEST_CHROMIUM="$chromium_path"
  echo "TICKSYNC_TEST_CHROMIUM=$chromium_path"
elif [ "${CI:-}" = true ]; then
  echo "FAIL: CI=true and Chromium is not available for the dashboard tests (scripts/services/chromium.sh ensure)" >&2
  exit 1
else
  echo "WARNING: no Chromium: the dashboard tests are skipped (apt-get install -y chromium)" >&2
fi

# qemu-user for the linux-arm64 release executable (test/release.test.ts): installed with apt-get
# (scripts/services/qemu.sh) when missing. With CI=true a missing emulator fails the run; without CI
# those tests skip with a warning.
if qemu_path=$(bash scripts/services/qemu.sh ensure); then
  export TICKSYNC_TEST_QEMU="$qemu_path"
  echo "TICKSYNC_TEST_QEMU=$qemu_path"
elif [ "${CI:-}" = true ]; then
  echo "FAIL: CI=true and qemu-aarch64 is not available for the linux-arm64 tests (scripts/services/qemu.sh ensure)" >&2
  exit 1
else
  echo "WARNING: no qemu-aarch64: the linux-arm64 emulation tests are skipped (apt-get install -y qemu-user libc6-arm64-cross)" >&2
fi

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
