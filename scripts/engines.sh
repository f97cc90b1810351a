#!/usr/bin/env bash
# The Docker engines Strata starts on this machine, in one place: the project's engine (what
# scripts/services.sh starts when DOCKER_HOST names none) and a pool of extra engines for
# strata:engines (README "Many runners, many engines"). The machine's own engine, its socket and
# docker0 are never touched.
#   scripts/engines.sh build          build the pinned engine once (nothing to do when it is there)
#   scripts/engines.sh main start|stop|status|host
#                                     the project's engine, at $STRATA_ENGINE_DIR/docker.sock
#   scripts/engines.sh start N        start pool engines 1..N (those already running are left as they are)
#   scripts/engines.sh stop           stop every pool engine, remove their bridges and NAT rules
#   scripts/engines.sh hosts          the pool's endpoints, comma-separated, for strata:engines
#
# Which dockerd (STRATA_DOCKERD):
#   pinned (default)  moby $STRATA_DOCKERD_VERSION (Docker 29), built from Go modules into the
#                     toolchain cache (8.5 minutes here with a cold module cache; reused after), with
#                     the classic overlay2 store: per trivial layer it spends half the CPU of Debian's
#                     20.10 (issue 28's breakdown, README "Where a cold run's CPU goes"), and the
#                     containerd store costs more than overlay2. Debian's containerd and runc run it.
#   debian            Debian's docker.io dockerd (20.10), the same way: for comparing the two.
#
# Which image store (STRATA_ENGINE_STORE), for the pinned dockerd, pool and project engine alike:
#   overlay2 (default)  the classic overlay2 store ("containerd-snapshotter": false), data in <engine>/data
#   containerd          the containerd image store, data in <engine>/data-containerd: for measuring
#                       it against overlay2 through docker.Image (issue 28). Debian's 20.10 has none.
# The two stores never share a data root (one would not read the other's), so switching the store
# starts the engine on a data root of its own; an engine already running with the other store is
# refused rather than left as it is: stop it first.
#
# Every engine has its own data root, exec root, pidfile, socket and bridge under the state folder.
# Their iptables management is off (several daemons on one host would rewrite each other's DOCKER
# chains); instead this script gives each bridge one masquerade rule and two forward rules of its
# own, tagged with the bridge's name, so build steps reach the network (RUN apt-get) and nothing
# else's rules are touched. Never --bridge=none: that deletes the host's docker0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export PATH="$PATH:/usr/local/go/bin"

mkdir -p "$STRATA_STATE/logs"
pool="$STRATA_STATE/engines/$STRATA_DOCKERD"
store="${STRATA_ENGINE_STORE:-overlay2}"
case "$store" in
  overlay2|containerd) ;;
  *) strata_die "STRATA_ENGINE_STORE=$store: use overlay2 (the classic store, the default) or containerd (the containerd image store)" ;;
esac
[ "$store" = overlay2 ] || [ "$STRATA_DOCKERD" = pinned ] \
  || strata_die "STRATA_ENGINE_STORE=$store needs STRATA_DOCKERD=pinned: Debian's 20.10 dockerd has only the classic store"
# <engine dir> -> its data root for this store (overlay2 keeps the folder it always had).
data_root() { if [ "$store" = overlay2 ]; then printf '%s/data' "$1"; else printf '%s/data-%s' "$1" "$store"; fi; }
# The store an engine was started with (written at start; none recorded: overlay2, as before the switch).
running_store() { cat "$1/store" 2>/dev/null || echo overlay2; }
# Bridge names are at most 15 characters and must not collide with another clone's; subnets are
# 10.<200+n>.<octet>.0/24 for the pool and 10.199.<octet>.0/24 for the project's engine.
tag="$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c1-5)"
octet="$(( 0x$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c6-7) % 250 ))"
main_tag="$(printf '%s' "$STRATA_ENGINE_DIR" | sha256sum | cut -c1-5)"
main_octet="$(( 0x$(printf '%s' "$STRATA_ENGINE_DIR" | sha256sum | cut -c6-7) % 250 ))"

pinned_bin="$STRATA_HOME/dockerd-$STRATA_DOCKERD_VERSION/bin/dockerd"
build_log="$STRATA_HOME/logs/build-dockerd-$STRATA_DOCKERD_VERSION.log"

dockerd_bin() {
  case "$STRATA_DOCKERD" in
    pinned) printf '%s' "$pinned_bin" ;;
    debian) command -v dockerd || strata_die "STRATA_DOCKERD=debian: Debian's dockerd is not installed (apt-get install docker.io)" ;;
  esac
}

build() {
  strata_remove_old_partials "$pinned_bin"
  [ -x "$pinned_bin" ] && return 0
  command -v go >/dev/null || strata_die "Go is needed to build dockerd $STRATA_DOCKERD_VERSION (/usr/local/go/bin/go); or set STRATA_DOCKERD=debian, or DOCKER_HOST to an engine of yours"
  mkdir -p "$STRATA_HOME/logs"
  strata_log "building dockerd $STRATA_DOCKERD_VERSION from Go modules (4–9 minutes the first time; log: $build_log)"
  local started tmp; started="$(date +%s)"; tmp="$(mktemp -d)"
  # netgo/osusergo: no cgo resolver or user lookup; nri_no_wasm: without it the NRI plugin's wasm
  # runtime is compiled in. nice: the machine is shared with test runs.
  if ! GOBIN="$tmp" CGO_ENABLED=0 nice -n 10 go install -trimpath -tags "netgo osusergo nri_no_wasm" \
      -ldflags "-s -w -X github.com/moby/moby/v2/dockerversion.Version=$STRATA_DOCKERD_VERSION" \
      "github.com/moby/moby/v2/cmd/dockerd@$STRATA_DOCKERD_VERSION" >"$build_log" 2>&1; then
    tail -20 "$build_log" >&2; rm -rf "$tmp"
    strata_die "building dockerd $STRATA_DOCKERD_VERSION failed; see $build_log"
  fi
  mkdir -p "$(dirname "$pinned_bin")"
  strata_move_whole "$tmp/dockerd" "$pinned_bin" || { rm -rf "$tmp"; strata_die "cannot put the dockerd just built at $pinned_bin"; }
  rm -rf "$tmp"
  strata_log "built dockerd $STRATA_DOCKERD_VERSION in $(( $(date +%s) - started )) s: $pinned_bin"
}

engine_up() { DOCKER_HOST="unix://$1" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# The bridge's own forward and masquerade rules (comment = the bridge's name, so stop finds exactly these).
nat_rules() { # <bridge> <subnet>
  printf '%s\n' "filter FORWARD -i $1 -m comment --comment strata-$1 -j ACCEPT" \
    "filter FORWARD -o $1 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment strata-$1 -j ACCEPT" \
    "nat POSTROUTING -s $2 ! -o $1 -m comment --comment strata-$1 -j MASQUERADE"
}

nat_up() { # <bridge> <subnet>
  if ! command -v iptables >/dev/null; then
    strata_log "warning: iptables is not installed: build steps on $1 get no outbound network (apt-get install iptables)"
    return 0
  fi
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || { strata_log "turning on IPv4 forwarding (net.ipv4.ip_forward=1) for build steps' network"; sysctl -qw net.ipv4.ip_forward=1; }
  local table chain rule
  while read -r table chain rule; do
    # shellcheck disable=SC2086 # a rule is words
    iptables -t "$table" -C "$chain" $rule 2>/dev/null || iptables -t "$table" -I "$chain" 1 $rule \
      || strata_die "iptables refused a rule for $1 ($table $chain $rule)"
  done < <(nat_rules "$@")
}

nat_down() { # <bridge> <subnet>
  command -v iptables >/dev/null || return 0
  local table chain rule
  while read -r table chain rule; do
    # shellcheck disable=SC2086
    while iptables -t "$table" -C "$chain" $rule 2>/dev/null; do iptables -t "$table" -D "$chain" $rule; done
  done < <(nat_rules "$@")
}

# Starts one engine: <dir> (data, exec root, pidfile, socket, daemon.json) <bridge> <gateway/24> <log> <name>
start_engine() {
  local dir="$1" bridge="$2" gateway="$3" log="$4" name="$5" bin subnet data
  if engine_up "$dir/docker.sock"; then
    [ "$(running_store "$dir")" = "$store" ] \
      || strata_die "$name is running with the $(running_store "$dir") store, not STRATA_ENGINE_STORE=$store: stop it first"
    return 0
  fi
  [ "$(id -u)" = 0 ] || strata_die "starting $name needs root; or set DOCKER_HOST to a running engine of yours"
  [ "$STRATA_DOCKERD" = debian ] || build
  bin="$(dockerd_bin)"
  for tool in containerd containerd-shim-runc-v2 runc; do
    command -v "$tool" >/dev/null || strata_die "dockerd needs $tool: apt-get install docker.io (Debian's containerd and runc)"
  done
  data="$(data_root "$dir")"
  mkdir -p "$data" "$dir/x"
  # Pinned engine: the store chosen (see the top; overlay2 unless asked), and no time namespaces,
  # which `docker run` needs with Debian's runc 1.1.5 (builds do not). Debian's 20.10 knows neither feature.
  if [ "$STRATA_DOCKERD" = pinned ]; then
    local snapshotter=false; [ "$store" = containerd ] && snapshotter=true
    printf '{\n  "features": { "containerd-snapshotter": %s, "time-namespaces": false }\n}\n' "$snapshotter" > "$dir/daemon.json"
  else
    printf '{}\n' > "$dir/daemon.json"
  fi
  subnet="${gateway%.*}.0/24"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add name "$bridge" type bridge
    ip addr add "$gateway/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  nat_up "$bridge" "$subnet"
  printf '%s\n' "$store" > "$dir/store"
  strata_log "starting $name ($STRATA_DOCKERD dockerd, $store store) at unix://$dir/docker.sock (bridge $bridge, log: $log)"
  # setsid: the daemon outlives this script and its process group.
  setsid "$bin" --config-file "$dir/daemon.json" --data-root "$data" --exec-root "$dir/x" \
    --pidfile "$dir/docker.pid" --host "unix://$dir/docker.sock" --bridge "$bridge" \
    --iptables=false --ip6tables=false --ip-masq=false \
    >"$log" 2>&1 < /dev/null &
  strata_wait_for "$name" "$log" engine_up "$dir/docker.sock"
}

stop_engine() { # <dir> <bridge> <gateway> <name>
  local dir="$1" bridge="$2" gateway="$3"
  if [ -f "$dir/docker.pid" ]; then strata_stop_pid "$4" "$dir/docker.pid"; fi
  nat_down "$bridge" "${gateway%.*}.0/24"
  ip link delete "$bridge" 2>/dev/null || true
}

# The project's engine.
main_bridge="stM${main_tag}"
main_gateway="10.199.$main_octet.1"
main_log="$STRATA_STATE/logs/engine.log"

main() {
  case "${1:-}" in
    start) start_engine "$STRATA_ENGINE_DIR" "$main_bridge" "$main_gateway" "$main_log" "the project's Docker engine" ;;
    stop) stop_engine "$STRATA_ENGINE_DIR" "$main_bridge" "$main_gateway" "the project's Docker engine" ;;
    status)
      if engine_up "$STRATA_ENGINE_DIR/docker.sock"; then
        printf 'running at unix://%s (%s dockerd, %s store, server %s)\n' "$STRATA_ENGINE_DIR/docker.sock" "$STRATA_DOCKERD" \
          "$(running_store "$STRATA_ENGINE_DIR")" \
          "$(DOCKER_HOST="unix://$STRATA_ENGINE_DIR/docker.sock" docker version --format '{{.Server.Version}}')"
      else
        printf 'stopped (unix://%s)\n' "$STRATA_ENGINE_DIR/docker.sock"; return 1
      fi ;;
    host) printf 'unix://%s\n' "$STRATA_ENGINE_DIR/docker.sock" ;;
    *) echo "usage: $0 main start|stop|status|host" >&2; exit 2 ;;
  esac
}

# The pool.
pool_bridge() { printf 'stE%s%s' "$tag" "$1"; }
pool_gateway() { printf '10.%s.%s.1' "$((200 + $1))" "$octet"; }

stop_pool() {
  [ -d "$pool" ] || return 0
  for dir in "$pool"/*/; do
    local n; n="$(basename "$dir")"
    stop_engine "$pool/$n" "$(pool_bridge "$n")" "$(pool_gateway "$n")" "engine $n"
  done
}

hosts() {
  local list=()
  [ -d "$pool" ] || { echo; return 0; }
  for dir in "$pool"/*/; do
    local n; n="$(basename "$dir")"
    engine_up "$pool/$n/docker.sock" && list+=("unix://$pool/$n/docker.sock")
  done
  (IFS=,; echo "${list[*]}")
}

case "${1:-}" in
  build) build ;;
  main) shift; main "$@" ;;
  start)
    count="${2:?usage: $0 start N}"
    for n in $(seq 1 "$count"); do
      start_engine "$pool/$n" "$(pool_bridge "$n")" "$(pool_gateway "$n")" "$STRATA_STATE/logs/engine-$n.log" "engine $n"
    done ;;
  stop) stop_pool ;;
  hosts) hosts ;;
  *) echo "usage: $0 build | main start|stop|status|host | start N | stop | hosts" >&2; exit 2 ;;
esac
