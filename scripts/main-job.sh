#!/usr/bin/env bash
# The main job: set up everything, then build and push the sample layer tree
# to the local registry on the dev stack, and print what was pushed.
# Run it again and it changes nothing: unchanged layers are not rebuilt.
# Usage: scripts/main-job.sh [stack]   (default: dev)
set -euo pipefail
source "$(dirname "$0")/env.sh"
stack="${1:-dev}"

"$STRATA_ROOT/scripts/bootstrap.sh"
"$STRATA_ROOT/scripts/services.sh" start
"$STRATA_ROOT/scripts/make-rootfs.sh" debian "$STRATA_ROOT/layers/debian/rootfs.tar"

cd "$STRATA_ROOT"
mkdir -p "$STRATA_STATE/pulumi-state" "$STRATA_STATE/summaries"
# Recorded in the stack outputs only: as a build input it would rebuild every layer on every commit.
STRATA_SOURCE_REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
export STRATA_SOURCE_REVISION
started=$SECONDS
# strata up (the Pulumi CLI with its event log), then one line per layer: result, ref and digest;
# the run's per-layer logs and report page land in $STRATA_STATE/logs/$stack/
status=0
"$STRATA_ROOT/scripts/strata" up --stack "$stack" ${STRATA_PARALLEL:+--parallel "$STRATA_PARALLEL"} \
  --summary-json "$STRATA_STATE/summaries/$stack.json" || status=$?
strata_log "up on $stack took $((SECONDS - started)) s; summary: $STRATA_STATE/summaries/$stack.json"
exit $status
