#!/usr/bin/env bash
# Starts, stops and reports the local services Strata builds against:
#   the Docker engine (Debian's docker.io), started only if not already running;
#   a registry (Debian's docker-registry) on 127.0.0.1:$STRATA_REGISTRY_PORT,
#   storing under $STRATA_STATE/registry.
# Logs: $STRATA_STATE/logs/{dockerd,registry}.log
# Usage: scripts/services.sh start|stop|status|gc
#   gc: the registry's garbage collection (after strata ci-clean deleted manifests):
#       stops the registry this script runs, removes blobs no manifest references, starts it again.
set -euo pipefail
source "$(dirname "$0")/env.sh"

logs="$STRATA_STATE/logs"
run="$STRATA_STATE/run"
mkdir -p "$logs" "$run" "$STRATA_STATE/registry/data"

registry_url="http://127.0.0.1:$STRATA_REGISTRY_PORT"

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
registry_up() { curl -fsS -o /dev/null "$registry_url/v2/" 2>/dev/null; }

wait_for() { # <what> <command...>
  local what="$1"; shift
  for _ in $(seq 1 120); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  strata_die "$what did not come up within 60 s; see $logs"
}

start_docker() {
  if docker_up; then return; fi
  [ "$(id -u)" = 0 ] || strata_die "the Docker engine is not running; start it (sudo systemctl start docker) or run this as root"
  strata_log "starting the Docker engine (log: $logs/dockerd.log)"
  # setsid: the daemon outlives this script and its process group.
  setsid dockerd --host unix:///var/run/docker.sock >"$logs/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$run/dockerd.pid"
  wait_for "the Docker engine" docker_up
}

start_registry() {
  if registry_up; then return; fi
  cat > "$STRATA_STATE/registry/config.yml" <<YAML
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $STRATA_STATE/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$STRATA_REGISTRY_PORT
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  strata_log "starting the registry on 127.0.0.1:$STRATA_REGISTRY_PORT (log: $logs/registry.log)"
  setsid docker-registry serve "$STRATA_STATE/registry/config.yml" >"$logs/registry.log" 2>&1 < /dev/null &
  echo $! > "$run/registry.pid"
  wait_for "the registry" registry_up
}

stop_pidfile() { # <name>
  local file="$run/$1.pid"
  [ -f "$file" ] || return 0
  local pid; pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    strata_log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

case "${1:-}" in
  start) start_docker; start_registry ;;
  # Only what these scripts started is stopped; a daemon the user runs is left alone.
  stop) stop_pidfile registry; stop_pidfile dockerd ;;
  gc)
    [ -f "$STRATA_STATE/registry/config.yml" ] || strata_die "no registry config at $STRATA_STATE/registry/config.yml: start the services first"
    # The registry must not take pushes while blobs are swept (distribution's own rule): stop it.
    stop_pidfile registry
    strata_log "garbage collection of $STRATA_STATE/registry/data"
    docker-registry garbage-collect "$STRATA_STATE/registry/config.yml" 2>&1 | grep -E '^(blob eligible|[0-9]+ blobs)' | tail -3 || true
    start_registry ;;
  status)
    docker_up && echo "docker: running ($(docker version --format '{{.Server.Version}}'))" || echo "docker: stopped"
    registry_up && echo "registry: running at 127.0.0.1:$STRATA_REGISTRY_PORT" || echo "registry: stopped" ;;
  *) echo "usage: $0 start|stop|status|gc" >&2; exit 2 ;;
esac
