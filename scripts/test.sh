#!/usr/bin/env bash
# `npm test`: type-check, then every test (unit and integration) with bun test. Prints one
# closing line "N passed, N failed, N skipped" read from bun's JUnit report.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
if [ ! -x node_modules/.bin/bun ]; then npm install --no-audit --no-fund; fi

echo "== type-check"
tsc --noEmit -p .

echo "== bun test"
mkdir -p test-artifacts
report=test-artifacts/junit.xml
rm -f "$report"
status=0
bun test --timeout=120000 --reporter=junit --reporter-outfile="$report" "$@" || status=$?
# The junit reporter replaces the console summary; print failures and the totals ourselves.
bun scripts/junit-summary.ts "$report" || status=$((status == 0 ? 1 : status))
exit $status
