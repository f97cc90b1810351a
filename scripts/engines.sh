#!/usr/bin/env bash
# A pool of extra Docker engines on this machine, for strata:engines (README "Many runners, many
# engines"). Each engine is Debian's dockerd with its own data root, exec root, pidfile, socket
# and bridge, under $STRATA_STATE/engines/<n>/; the machine's own engine is not touched.
#   scripts/engines.sh start N   start engines 1..N (those already running are left as they are)
#   scripts/engines.sh stop      stop every engine this script started, remove their bridges
#   scripts/engines.sh hosts     print their endpoints, comma-separated, for strata:engines
# Their iptables management is off: several daemons on one host would rewrite each other's
# DOCKER chains. So their build steps get no outbound network (a RUN apt-get needs an engine on a
# machine of its own); registry pulls and pushes are the daemon's own and work.
set -euo pipefail
source "$(dirname "$0")/env.sh"

pool="$STRATA_STATE/engines"
mkdir -p "$STRATA_STATE/logs"
# Bridge names are at most 15 characters and must not collide with another clone's pool.
tag="$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c1-5)"
octet="$(( 0x$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c6-7) % 250 ))"

socket_of() { printf '%s/%s/docker.sock' "$pool" "$1"; }
engine_up() { DOCKER_HOST="unix://$(socket_of "$1")" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_engine() { # <n>
  local n="$1" dir="$pool/$1" bridge="stE${tag}$1"
  engine_up "$n" && return 0
  [ "$(id -u)" = 0 ] || strata_die "starting a Docker engine needs root"
  mkdir -p "$dir/data" "$dir/x"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add name "$bridge" type bridge
    ip addr add "10.$((200 + n)).$octet.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  strata_log "starting engine $n at unix://$(socket_of "$n") (log: $STRATA_STATE/logs/engine-$n.log)"
  setsid dockerd --data-root "$dir/data" --exec-root "$dir/x" --pidfile "$dir/docker.pid" \
    --host "unix://$(socket_of "$n")" --bridge "$bridge" --iptables=false --ip-masq=false \
    >"$STRATA_STATE/logs/engine-$n.log" 2>&1 < /dev/null &
  strata_wait_for "engine $n" "$STRATA_STATE/logs/engine-$n.log" engine_up "$n"
}

stop_engines() {
  [ -d "$pool" ] || return 0
  for dir in "$pool"/*/; do
    local n; n="$(basename "$dir")"
    if [ -f "$dir/docker.pid" ]; then strata_stop_pid "engine $n" "$dir/docker.pid"; fi
    ip link delete "stE${tag}$n" 2>/dev/null || true
  done
}

hosts() {
  local list=()
  [ -d "$pool" ] || { echo; return 0; }
  for dir in "$pool"/*/; do
    local n; n="$(basename "$dir")"
    engine_up "$n" && list+=("unix://$(socket_of "$n")")
  done
  (IFS=,; echo "${list[*]}")
}

case "${1:-}" in
  start)
    count="${2:?usage: $0 start N}"
    for n in $(seq 1 "$count"); do start_engine "$n"; done ;;
  stop) stop_engines ;;
  hosts) hosts ;;
  *) echo "usage: $0 start N|stop|hosts" >&2; exit 2 ;;
esac
