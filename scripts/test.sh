#!/usr/bin/env bash
# The whole test suite: unit and mock tests, then the end-to-end suite against
# the real Pulumi engine, Docker engine and a local registry.
# Usage: scripts/test.sh [unit|e2e|all]   (default: all)
set -euo pipefail
source "$(dirname "$0")/env.sh"
what="${1:-all}"

"$STRATA_ROOT/scripts/bootstrap.sh"
cd "$STRATA_ROOT"
npm run --silent typecheck
results="$STRATA_STATE/test-results"
rm -rf "$results" && mkdir -p "$results"
status=0
if [ "$what" = unit ] || [ "$what" = all ]; then
  npx vitest run --project unit --reporter=default --reporter=json --outputFile="$results/unit.json" || status=$?
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
  # The suite starts the Docker engine (if it is not running) and a registry of its own, and stops both.
  npx vitest run --project e2e --reporter=default --reporter=json --outputFile="$results/e2e.json" || status=$?
fi
# One closing line over every project that ran: "tests: N passed, N failed".
node -e '
  const fs = require("fs"); let passed = 0, failed = 0;
  for (const file of fs.readdirSync(process.argv[1])) {
    const report = JSON.parse(fs.readFileSync(`${process.argv[1]}/${file}`, "utf8"));
    passed += report.numPassedTests; failed += report.numFailedTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$results"
exit $status
