#!/usr/bin/env bash
# A current Docker engine (moby $STRATA_DOCKERD_VERSION, Docker 29), built from Go modules and run
# beside the machine's engine, to measure docker.Image on it (issue 28). The machine's engine, its
# socket and docker0 are not touched.
#   scripts/engine-tools.sh build    build dockerd once into $STRATA_HOME/dockerd-<version>/bin
#                                    (8.5 minutes here with a cold module cache on 2 busy cores; reused after)
#   scripts/engine-tools.sh start    build if needed, then start it (nothing to do if it is up)
#   scripts/engine-tools.sh stop     stop it and remove its bridge
#   scripts/engine-tools.sh status   print its endpoint and version, or say it is down (exit 1)
#   scripts/engine-tools.sh host     print its endpoint, for DOCKER_HOST
# It runs like the engines of scripts/engines.sh (own data root, exec root, pidfile, socket and
# bridge under the state folder; iptables management off, so its build steps get no outbound
# network), with two differences: its own binary, and a daemon.json that keeps the classic overlay2
# store (the containerd store costs more CPU per image: issue 28's probe) and turns time namespaces
# off (`docker run` needs that with Debian's runc 1.1.5; builds do not). It uses Debian's containerd
# and runc (installed with docker.io). Loopback registries are insecure-trusted by default.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export PATH="$PATH:/usr/local/go/bin"

version="$STRATA_DOCKERD_VERSION"
bin_dir="$STRATA_HOME/dockerd-$version/bin"
dockerd_bin="$bin_dir/dockerd"
build_log="$STRATA_HOME/logs/build-dockerd-$version.log"
state="$STRATA_STATE/dockerd-$version"
socket="$state/docker.sock"
pidfile="$state/docker.pid"
log="$STRATA_STATE/logs/dockerd-$version.log"
# Bridge names are at most 15 characters and must not collide with another clone's (engines.sh's
# scheme: a tag of the state folder); the subnet is 10.199.<octet>.0/24, beside the pool's 10.201+.
tag="$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c1-5)"
octet="$(( 0x$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c6-7) % 250 ))"
bridge="stD${tag}29"
subnet_address="10.199.$octet.1/24"

build() {
  [ -x "$dockerd_bin" ] && return 0
  command -v go >/dev/null || strata_die "Go is needed to build dockerd $version (/usr/local/go/bin/go)"
  mkdir -p "$STRATA_HOME/logs"
  strata_log "building dockerd $version from Go modules (4–9 minutes; log: $build_log)"
  local started tmp; started="$(date +%s)"; tmp="$(mktemp -d)"
  # netgo/osusergo: no cgo resolver or user lookup; nri_no_wasm: without it the NRI plugin's wasm
  # runtime is compiled in. nice: the machine is shared with test runs.
  if ! GOBIN="$tmp" CGO_ENABLED=0 nice -n 10 go install -trimpath -tags "netgo osusergo nri_no_wasm" \
      -ldflags "-s -w -X github.com/moby/moby/v2/dockerversion.Version=$version" \
      "github.com/moby/moby/v2/cmd/dockerd@$version" >"$build_log" 2>&1; then
    tail -20 "$build_log" >&2; rm -rf "$tmp"
    strata_die "building dockerd $version failed; see $build_log"
  fi
  mkdir -p "$bin_dir"
  mv "$tmp/dockerd" "$dockerd_bin"; rm -rf "$tmp"
  strata_log "built dockerd $version in $(( $(date +%s) - started )) s: $dockerd_bin"
}

engine_up() { DOCKER_HOST="unix://$socket" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  engine_up && return 0
  [ "$(id -u)" = 0 ] || strata_die "starting a Docker engine needs root"
  build
  for tool in containerd containerd-shim-runc-v2 runc; do
    command -v "$tool" >/dev/null || strata_die "dockerd $version needs $tool: apt-get install docker.io (Debian's containerd and runc)"
  done
  mkdir -p "$state/data" "$state/x" "$(dirname "$log")"
  cat > "$state/daemon.json" <<'JSON'
{
  "features": { "containerd-snapshotter": false, "time-namespaces": false }
}
JSON
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add name "$bridge" type bridge
    ip addr add "$subnet_address" dev "$bridge"
    ip link set "$bridge" up
  fi
  strata_log "starting dockerd $version at unix://$socket (bridge $bridge, log: $log)"
  setsid "$dockerd_bin" --config-file "$state/daemon.json" --data-root "$state/data" --exec-root "$state/x" \
    --pidfile "$pidfile" --host "unix://$socket" --bridge "$bridge" \
    --iptables=false --ip6tables=false --ip-masq=false \
    >"$log" 2>&1 < /dev/null &
  strata_wait_for "dockerd $version" "$log" engine_up
}

stop() {
  if [ -f "$pidfile" ]; then strata_stop_pid "dockerd $version" "$pidfile"; fi
  if ip link show "$bridge" >/dev/null 2>&1; then ip link delete "$bridge"; fi
}

status() {
  if engine_up; then
    printf 'dockerd %s up at unix://%s (server %s)\n' "$version" "$socket" \
      "$(DOCKER_HOST="unix://$socket" docker version --format '{{.Server.Version}}')"
  else
    printf 'dockerd %s down (socket unix://%s)\n' "$version" "$socket"; return 1
  fi
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  host) printf 'unix://%s\n' "$socket" ;;
  *) echo "usage: $0 build|start|stop|status|host" >&2; exit 2 ;;
esac
