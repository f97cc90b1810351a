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
if [ "$what" = unit ] || [ "$what" = all ]; then
  npx vitest run --project unit
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
  "$STRATA_ROOT/scripts/services.sh" start
  npx vitest run --project e2e
fi
