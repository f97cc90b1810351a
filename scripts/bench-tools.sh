#!/usr/bin/env bash
# Bench-only tools, not dependencies of Strata: the peer a team would pick today, `docker buildx
# bake` on a current BuildKit. buildkitd and buildctl (BuildKit v0.34.2) and buildx (v0.38.2) are
# built from Go modules into the toolchain cache, once; a buildkitd of the bench's own (its root,
# socket and registry settings under the state folder) is started and stopped around a bench run.
#   scripts/bench-tools.sh install   build what is missing (about 6 minutes the first time)
#   scripts/bench-tools.sh start     start buildkitd and point a buildx builder (remote driver) at it
#   scripts/bench-tools.sh stop      stop it
# After start, bench/bake-side.ts finds buildx through STRATA_BAKE_TOOLS and the builder through
# the files below.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export PATH="$PATH:/usr/local/go/bin"

BUILDKIT_VERSION=v0.34.2
BUILDX_VERSION=v0.38.2
tools="$STRATA_HOME/bench-tools"
bench_state="$STRATA_STATE/bench-buildkit"
sock="$bench_state/buildkitd.sock"
pidfile="$bench_state/buildkitd.pid"
log="$STRATA_STATE/logs/buildkitd.log"

install_tools() {
  mkdir -p "$tools" "$STRATA_HOME/logs"
  command -v go >/dev/null || strata_die "Go is needed to build the bench's BuildKit and buildx"
  strata_remove_old_partials "$tools/buildx-$BUILDX_VERSION"
  if [ ! -x "$tools/buildx-$BUILDX_VERSION" ]; then
    strata_log "building buildx $BUILDX_VERSION from Go modules (about 2 minutes)"
    local bin; bin="$(mktemp -d)"
    GOBIN="$bin" CGO_ENABLED=0 go install "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION" >"$STRATA_HOME/logs/build-buildx.log" 2>&1 \
      || { tail -20 "$STRATA_HOME/logs/build-buildx.log" >&2; strata_die "building buildx failed; see $STRATA_HOME/logs/build-buildx.log"; }
    strata_move_whole "$bin/buildx" "$tools/buildx-$BUILDX_VERSION" || strata_die "cannot put the buildx just built at $tools/buildx-$BUILDX_VERSION"
    rm -rf "$bin"
  fi
  strata_remove_old_partials "$tools/buildkitd-$BUILDKIT_VERSION"
  strata_remove_old_partials "$tools/buildctl-$BUILDKIT_VERSION"
  if [ ! -x "$tools/buildkitd-$BUILDKIT_VERSION" ] || [ ! -x "$tools/buildctl-$BUILDKIT_VERSION" ]; then
    # `go install …/buildkitd@version` is refused (the module's go.mod has exclude directives): build
    # inside a writable copy of the downloaded module instead.
    strata_log "building buildkitd and buildctl $BUILDKIT_VERSION from Go modules (about 4 minutes)"
    local module source
    module="$(cd "$(mktemp -d)" && go mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
    [ -d "$module" ] || strata_die "go mod download github.com/moby/buildkit@$BUILDKIT_VERSION gave no folder"
    source="$(mktemp -d)"; cp -r "$module/." "$source"; chmod -R u+w "$source"
    for cmd in buildkitd buildctl; do
      (cd "$source" && CGO_ENABLED=0 strata_go_build_whole "$tools/$cmd-$BUILDKIT_VERSION" "$STRATA_HOME/logs/build-$cmd.log" -trimpath -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" "./cmd/$cmd") \
        || { tail -20 "$STRATA_HOME/logs/build-$cmd.log" >&2; strata_die "building $cmd failed; see $STRATA_HOME/logs/build-$cmd.log"; }
    done
    rm -rf "$source"
  fi
  command -v runc >/dev/null || strata_die "buildkitd's OCI worker needs runc: apt-get install runc"
}

buildkitd_up() { "$tools/buildctl-$BUILDKIT_VERSION" --addr "unix://$sock" debug workers >/dev/null 2>&1; }

start_buildkitd() {
  install_tools
  mkdir -p "$bench_state" "$(dirname "$log")"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    # A bench killed before its trap ran leaves its buildkitd, perhaps stopped (SIGSTOP between bake's
    # turns): continued, then stopped, so this run starts on a new root like every other; never built over.
    kill -CONT -- "-$(cat "$pidfile")" 2>/dev/null || true
    strata_stop_pid buildkitd "$pidfile"
    kill -0 "$(cat "$pidfile")" 2>/dev/null && strata_die "buildkitd (pid $(cat "$pidfile")) did not stop: stop it, then run $0 start again"
  fi
  # The registries the bench pushes to are plain HTTP on loopback.
  printf '[registry."127.0.0.1:%s"]\n  http = true\n  insecure = true\n' "$STRATA_REGISTRY_PORT" > "$bench_state/buildkitd.toml"
  # A fresh root for every start, as Strata's side starts from an engine without earlier bench runs'
  # images: what buildkitd keeps of earlier runs (build history, content and its labels) survives
  # `buildx prune -af`, and on a root kept across days of bench runs bake's N=20 no-op took 3.1 s
  # (median of nine) where a new root's took 1.9 (1.1–2.4), while Strata's own went 3.5 → 2.9 s
  # between the same two runs (2026-12-03, bench/results/…-paused-bake-n20.json, …-fresh-bake-root-n20.json).
  # A buildkitd killed mid-build leaves its overlay mounts under the root.
  strata_remove_tree "$bench_state/root" || strata_die "cannot remove $bench_state/root, where buildkitd starts afresh (why above; findmnt -R $bench_state/root lists what is mounted there): fix that, then run $0 start again"
  strata_log "starting the bench's buildkitd $BUILDKIT_VERSION (log: $log)"
  setsid "$tools/buildkitd-$BUILDKIT_VERSION" --root "$bench_state/root" --addr "unix://$sock" --config "$bench_state/buildkitd.toml" \
    --oci-worker=true --containerd-worker=false --oci-worker-snapshotter=overlayfs >"$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  strata_wait_for "buildkitd" "$log" buildkitd_up
  # A builder of buildx's remote driver; DOCKER_HOST at a socket that does not exist keeps buildx off
  # the machine's engine (the docker-container driver would pull BuildKit from Docker Hub).
  export BUILDX_CONFIG="$bench_state/buildx"
  DOCKER_HOST="unix://$bench_state/no-docker.sock" "$tools/buildx-$BUILDX_VERSION" rm strata-bench >/dev/null 2>&1 || true
  DOCKER_HOST="unix://$bench_state/no-docker.sock" "$tools/buildx-$BUILDX_VERSION" create --name strata-bench --driver remote "unix://$sock" >/dev/null
}

case "${1:-}" in
  install) install_tools ;;
  start) start_buildkitd ;;
  # A bench stops buildkitd (SIGSTOP) between bake's turns: continue it first, or it takes no TERM.
  stop) [ -f "$pidfile" ] && { kill -CONT -- "-$(cat "$pidfile")" 2>/dev/null || true; strata_stop_pid buildkitd "$pidfile"; } && rm -f "$pidfile" || true ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
