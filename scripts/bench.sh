#!/usr/bin/env bash
# Benchmarks. Print tables, write JSON to .strata/bench/.
#   scripts/bench.sh [--sizes 10,50,200] [--runs 3] [--noop-repeats 3] [--parallel 8]
#                    [--builders docker,strata] [--peers plain,bake] [--sweep 2,4,8,16] [--signing]
#                    [--build-network default,host,none] [--out FILE]
#       Strata against a plain build script and, with --peers …bake, `docker buildx bake` on a
#       current BuildKit (scripts/bench-tools.sh builds it once and runs a buildkitd of its own for
#       the run) on synthetic catalogs (cold: every side's build cache emptied first; new content on
#       a warm engine: every layer changed, caches kept; no-op, leaf, common-libs, and CI runs of a
#       one-leaf change), and fingerprinting throughput against sha256sum. The cold and new-content
#       runs of Strata and bake are CPU-sampled by component (bench/cpu-sampler.ts). --signing adds,
#       for each builder, a side "<builder>+signed" whose stack signs and attests every image (a
#       test-only key, bench/signing-key.ts); its no-op runs are CPU-sampled too. The sides take
#       turns, first and second in alternate runs; each cold turn starts with no side's images in the
#       engine (they come back after the cold turns, untimed). --build-network
#       gives each builder a side per strata:buildNetwork listed ("docker+host"; default: the engine's
#       own network only); bake's buildkitd runs its steps on the host's network.
#   scripts/bench.sh backends [--size 200] [--repeats 5]
#       a no-op on the PostgreSQL backend against the file backend (starts the cluster).
#   scripts/bench.sh breakdown [--size 200] [--parallel 8] [--warm-engine] [--peers bake]
#                    [--build-network default|host|none] [--out FILE]
#       where one cold run's time goes: start-up, steps (pull, build, push), the critical chain, the
#       tail, and the CPU of each component (engine, its children, containerd, registry, Pulumi
#       engine, language host, plugins) in all and per layer; with --peers bake, bake's cold run of
#       the same tree too (buildkitd's CPU). Cold empties the build caches first; --warm-engine keeps them.
#   scripts/bench.sh platforms [--size 50] [--runs 3]
#       what a second platform costs: one platform against linux/amd64 + linux/arm64 (emulated).
#   scripts/bench.sh scaling [--size 200] [--engines 1,2,4,8,16]
#       one measured cold build, then the modelled time on K engines.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$STRATA_ROOT/scripts/bootstrap.sh"
case "${1:-}" in
  backends)
    shift
    STRATA_BACKEND=postgres "$STRATA_ROOT/scripts/services.sh" start
    node "$STRATA_ROOT/dist/bench/backends.js" "$@" ;;
  breakdown)
    shift
    "$STRATA_ROOT/scripts/services.sh" start
    if printf '%s\n' "$@" | grep -q bake; then
      "$STRATA_ROOT/scripts/bench-tools.sh" start
      trap '"$STRATA_ROOT/scripts/bench-tools.sh" stop' EXIT
    fi
    node "$STRATA_ROOT/dist/bench/breakdown.js" "$@" ;;
  platforms)
    shift
    "$STRATA_ROOT/scripts/services.sh" start
    "$STRATA_ROOT/scripts/services.sh" emulation linux/arm64
    node "$STRATA_ROOT/dist/bench/platforms.js" "$@" ;;
  scaling)
    shift
    "$STRATA_ROOT/scripts/services.sh" start
    node "$STRATA_ROOT/dist/bench/scaling.js" "$@" ;;
  *)
    "$STRATA_ROOT/scripts/services.sh" start
    if printf '%s\n' "$@" | grep -q bake; then
      "$STRATA_ROOT/scripts/bench-tools.sh" start
      trap '"$STRATA_ROOT/scripts/bench-tools.sh" stop' EXIT
    fi
    "$STRATA_ROOT/scripts/make-rootfs.sh" debian "$STRATA_ROOT/layers/debian/rootfs.tar"
    node "$STRATA_ROOT/dist/bench/fingerprint.js"
    node "$STRATA_ROOT/dist/bench/run.js" "$@" ;;
esac
