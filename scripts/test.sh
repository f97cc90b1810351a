#!/usr/bin/env bash
# The whole test suite: unit and mock tests, then the end-to-end suite against
# the real Pulumi engine, Docker engine and a local registry.
# Usage: scripts/test.sh [unit|e2e|all]   (default: all)
# The closing line counts passed, failed and skipped tests, and files that failed outside a test
# (at import or in a hook). A skipped test fails the run unless test/allowed-skips.txt lists it
# with a reason: a skip must never pass for a pass. CI runs this through .ci/run, which sets CI=true
# (a missing golden file then fails instead of being written).
set -euo pipefail
source "$(dirname "$0")/env.sh"
what="${1:-all}"
case "$what" in
  unit|e2e|all) ;;
  *) printf '[strata] error: scripts/test.sh %s: unknown suite; use unit, e2e or all\n' "$what" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { printf '[strata] error: scripts/test.sh takes one argument (unit, e2e or all), got: %s\n' "$*" >&2; exit 2; }

if [ "$what" = unit ]; then "$STRATA_ROOT/scripts/bootstrap.sh"; else "$STRATA_ROOT/scripts/bootstrap.sh" --test-tools; fi
cd "$STRATA_ROOT"
npm run --silent typecheck
results="$STRATA_STATE/test-results"
rm -rf "$results" && mkdir -p "$results"
# Tests keep what a person would look at here (the report's screenshot); the e2e suite points STRATA_STATE elsewhere.
export STRATA_TEST_OUTPUT="$results"
status=0
# The Debian base's rootfs (the sample's, as the main job makes it; nothing when it is there): the
# SBOM test reads its packages against the list make-rootfs.sh writes beside it.
"$STRATA_ROOT/scripts/make-rootfs.sh" debian "$STRATA_ROOT/layers/debian/rootfs.tar"
if [ "$what" = unit ] || [ "$what" = all ]; then
  npx vitest run --project unit --reporter=default --reporter=json --outputFile="$results/unit.json" || status=$?
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
  # The suite starts the Docker engine (if it is not running) and a registry of its own, and stops both.
  # cosign for the signing tests (built from Go modules the first time, 15 min here; reused after):
  # no test builds it silently.
  "$STRATA_ROOT/scripts/cosign-tools.sh" ensure
  npx vitest run --project e2e --reporter=default --reporter=json --outputFile="$results/e2e.json" || status=$?
fi
# One closing line over every project that ran: "tests: N passed, N failed, N skipped; N files
# failed outside a test (at import or in a hook)". A failure of either kind, a report missing for
# a suite that ran, or a skip not allowed, fails the run.
node "$STRATA_ROOT/scripts/test-summary.mjs" "$results" "$what" "$STRATA_ROOT/test/allowed-skips.txt" || status=1
exit $status
