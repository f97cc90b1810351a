#!/usr/bin/env bash
# The kill sweep: SIGKILL `pulumi up` at 20 seeded points, recover with `strata recover`,
# converge with `strata up`; prints a row per point and "converged N/20, lost tags N".
#   scripts/kill-sweep.sh            (STRATA_SWEEP_SEED=<n> for another set of points)
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$STRATA_ROOT/scripts/bootstrap.sh"
cd "$STRATA_ROOT"
npx vitest run --project sweep
