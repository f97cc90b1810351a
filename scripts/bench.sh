#!/usr/bin/env bash
# Benchmarks: Strata against a plain build script on synthetic catalogs, and
# fingerprinting throughput against sha256sum. Prints tables, writes JSON to .strata/bench/.
#   scripts/bench.sh [--sizes 10,50,200] [--runs 3] [--noop-repeats 3] [--parallel 8]
#                    [--builders docker,strata] [--sweep 2,4,8,16] [--out FILE]
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$STRATA_ROOT/scripts/bootstrap.sh"
"$STRATA_ROOT/scripts/services.sh" start
"$STRATA_ROOT/scripts/make-rootfs.sh" debian "$STRATA_ROOT/layers/debian/rootfs.tar"
node "$STRATA_ROOT/dist/bench/fingerprint.js"
node "$STRATA_ROOT/dist/bench/run.js" "$@"
