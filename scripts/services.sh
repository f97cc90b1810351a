#!/usr/bin/env bash
# Starts, stops and reports the local services Strata builds against:
#   the Docker engine (Debian's docker.io), started only if not already running;
#   a registry (Debian's docker-registry) on 127.0.0.1:$STRATA_REGISTRY_PORT,
#   storing under $STRATA_STATE/registry.
#   with STRATA_BACKEND=postgres, a PostgreSQL 15 cluster (Debian's postgresql) for Pulumi's state:
#     data under $STRATA_STATE/postgres (or, when the postgres user cannot enter the state folder,
#     as under root's 0700 home, in $STRATA_POSTGRES_DIR, default /var/lib/strata-postgres/<hash>),
#     127.0.0.1:$STRATA_POSTGRES_PORT only, role and database "strata", a password generated once
#     into $STRATA_STATE/postgres/pgpass (PGPASSFILE format, mode 600), never printed and never put
#     in a URL (env.sh points PGPASSFILE at it).
# Logs: $STRATA_STATE/logs/{dockerd,registry,postgres}.log
# Usage: scripts/services.sh start|stop|status|gc|emulation [os/arch ...]
#   emulation: lets this machine's engine run build steps of foreign platforms (linux/arm64, …):
#       installs Debian's qemu-user-static if missing, mounts binfmt_misc if needed and registers
#       the platform's interpreter from the package's binfmt.d entry (root; idempotent). `start`
#       does it too for the platforms in $STRATA_EMULATE (space-separated).
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

start_docker() {
  if docker_up; then return; fi
  [ "$(id -u)" = 0 ] || strata_die "the Docker engine is not running; start it (sudo systemctl start docker) or run this as root"
  strata_log "starting the Docker engine (log: $logs/dockerd.log)"
  # setsid: the daemon outlives this script and its process group.
  setsid dockerd --host unix:///var/run/docker.sock >"$logs/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$run/dockerd.pid"
  strata_wait_for "the Docker engine" "$logs/dockerd.log" docker_up
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
  strata_wait_for "the registry" "$logs/registry.log" registry_up
}

# The client's side (the 0600 password file env.sh points PGPASSFILE at) stays in the state folder.
pg_home="$STRATA_STATE/postgres"
# The server's side (data, socket, its log) must be where the server's user can enter every folder
# above it. As root the server runs as the postgres user, who cannot enter a clone under root's 0700
# home or a mktemp -d folder: then the cluster lives in a folder of its own, one per state folder.
pg_dir="$pg_home"
pg_log="$logs/postgres.log"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STRATA_STATE" 2>/dev/null; then
  pg_dir="${STRATA_POSTGRES_DIR:-/var/lib/strata-postgres/$(printf '%s' "$STRATA_STATE" | sha256sum | cut -c1-16)}"
  pg_log="$pg_dir/log/postgres.log"
fi
pg_bin() { # <tool>: Debian's PostgreSQL 15 tools
  local tool="/usr/lib/postgresql/15/bin/$1"
  [ -x "$tool" ] || strata_die "PostgreSQL 15 is not installed: apt-get install postgresql (Debian's package)"
  printf '%s' "$tool"
}
# The server refuses to run as root: as root, its files belong to the postgres user and it runs as that user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
postgres_up() { as_pg "$(pg_bin pg_ctl)" -D "$pg_dir/data" status >/dev/null 2>&1; }

start_postgres() {
  mkdir -p "$pg_home" "$pg_dir" "$(dirname "$pg_log")"
  if [ "$pg_dir" != "$pg_home" ]; then
    # Every folder above the cluster must be enterable by the server's user (the parent of a default one is ours to open).
    chmod 755 "$pg_dir" "$(dirname "$pg_dir")" 2>/dev/null || true
    runuser -u postgres -- test -x "$pg_dir" 2>/dev/null \
      || strata_die "the postgres user cannot enter $pg_dir (a folder above it is closed to it): set STRATA_POSTGRES_DIR to a folder it can enter, e.g. under /var/lib"
    strata_log "the state folder $STRATA_STATE is closed to the postgres user; the cluster lives in $pg_dir"
  fi
  if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
    strata_log "creating a PostgreSQL cluster in $pg_dir/data (role strata, password in $pg_home/pgpass)"
    local password; password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    ( umask 077; printf '127.0.0.1:%s:*:strata:%s\n' "$STRATA_POSTGRES_PORT" "$password" > "$pg_home/pgpass" )
    mkdir -p "$pg_dir/data" "$pg_dir/run"
    # initdb reads the password from a file only the server's user can read, removed right after.
    local pwfile="$pg_dir/run/initdb-password"
    ( umask 077; printf '%s\n' "$password" > "$pwfile" )
    [ "$(id -u)" != 0 ] || chown -R postgres: "$pg_dir/data" "$pg_dir/run" "$pwfile"
    as_pg "$(pg_bin initdb)" -D "$pg_dir/data" -U strata --auth=scram-sha-256 --pwfile="$pwfile" >"$logs/postgres-initdb.log" 2>&1 \
      || { rm -f "$pwfile"; strata_die "initdb failed; see $logs/postgres-initdb.log"; }
    rm -f "$pwfile"
  fi
  mkdir -p "$pg_dir/run"
  touch "$pg_log"
  # The server (the postgres user) writes its socket and its log here.
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_dir/run" "$pg_log"; fi
  if ! postgres_up; then
    strata_log "starting PostgreSQL on 127.0.0.1:$STRATA_POSTGRES_PORT (log: $pg_log)"
    as_pg "$(pg_bin pg_ctl)" -D "$pg_dir/data" -l "$pg_log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$STRATA_POSTGRES_PORT -c unix_socket_directories=$pg_dir/run" start >/dev/null \
      || strata_die "PostgreSQL did not start; see $pg_log"
  fi
  # The database Pulumi's backend keeps its table in (the backend creates the table itself).
  local psql; psql="$(pg_bin psql)"
  if ! PGPASSFILE="$pg_home/pgpass" "$psql" -h 127.0.0.1 -p "$STRATA_POSTGRES_PORT" -U strata -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'strata'" | grep -q 1; then
    PGPASSFILE="$pg_home/pgpass" "$psql" -h 127.0.0.1 -p "$STRATA_POSTGRES_PORT" -U strata -d postgres -qc "CREATE DATABASE strata" >/dev/null
  fi
}

stop_postgres() {
  [ -f "$pg_dir/data/PG_VERSION" ] || return 0
  if postgres_up; then
    strata_log "stopping PostgreSQL"
    as_pg "$(pg_bin pg_ctl)" -D "$pg_dir/data" -m fast -w stop >/dev/null
  fi
}

stop_pidfile() { # <name>
  local file="$run/$1.pid"
  [ -f "$file" ] || return 0
  strata_stop_pid "$1" "$file"
  rm -f "$file"
}

qemu_name() { # os/arch[/variant] → the qemu-user-static binfmt name, as core/platforms.ts qemuBinfmtName
  case "$1" in
    linux/arm64*) echo qemu-aarch64 ;;
    linux/arm/v[5-7]|linux/arm) echo qemu-arm ;;
    linux/ppc64le) echo qemu-ppc64le ;;
    linux/s390x) echo qemu-s390x ;;
    linux/riscv64) echo qemu-riscv64 ;;
    linux/386) echo qemu-i386 ;;
    *) return 1 ;;
  esac
}

native_platform() {
  case "$(uname -m)" in x86_64) echo linux/amd64 ;; aarch64) echo linux/arm64 ;; *) echo "linux/$(uname -m)" ;; esac
}

register_emulation() { # os/arch ...
  local binfmt=/proc/sys/fs/binfmt_misc platform name
  for platform in "$@"; do
    [ "$platform" = "$(native_platform)" ] && continue
    name="$(qemu_name "$platform")" || strata_die "no qemu-user-static interpreter for $platform (linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x, linux/riscv64, linux/386)"
    [ -f "$binfmt/$name" ] && [ "$(head -1 "$binfmt/$name")" = enabled ] && continue
    [ "$(id -u)" = 0 ] || strata_die "registering $name for $platform builds needs root (sudo $0 emulation $platform)"
    if [ ! -f "/usr/lib/binfmt.d/$name.conf" ]; then
      strata_log "installing Debian's qemu-user-static"
      { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user-static >/dev/null; } \
        || strata_die "apt-get install qemu-user-static failed"
    fi
    [ -f "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" \
      || strata_die "cannot mount binfmt_misc at $binfmt (a container without that right?): $platform builds cannot run here; use an engine that builds $platform natively"
    # The package's entry has the F flag: the kernel opens the interpreter now, so it works inside build containers.
    [ -f "$binfmt/$name" ] || cat "/usr/lib/binfmt.d/$name.conf" > "$binfmt/register" \
      || strata_die "the kernel refused to register $name in $binfmt"
    [ "$(head -1 "$binfmt/$name")" = enabled ] || echo 1 > "$binfmt/$name"
    strata_log "$platform build steps run under emulation ($name, registered in $binfmt)"
  done
}

case "${1:-}" in
  emulation)
    shift
    [ $# -gt 0 ] || strata_die "usage: $0 emulation os/arch [...] (for example linux/arm64)"
    register_emulation "$@" ;;
  start)
    start_docker; start_registry
    # shellcheck disable=SC2086 # a space-separated list
    if [ -n "${STRATA_EMULATE:-}" ]; then register_emulation $STRATA_EMULATE; fi
    if [ "$STRATA_BACKEND" = postgres ]; then start_postgres; fi ;;
  # Only what these scripts started is stopped; a daemon the user runs is left alone.
  stop) stop_pidfile registry; stop_pidfile dockerd; stop_postgres ;;
  gc)
    [ -f "$STRATA_STATE/registry/config.yml" ] || strata_die "no registry config at $STRATA_STATE/registry/config.yml: start the services first"
    # The registry must not take pushes while blobs are swept (distribution's own rule): stop it.
    stop_pidfile registry
    strata_log "garbage collection of $STRATA_STATE/registry/data"
    docker-registry garbage-collect "$STRATA_STATE/registry/config.yml" 2>&1 | grep -E '^(blob eligible|[0-9]+ blobs)' | tail -3 || true
    start_registry ;;
  status)
    docker_up && echo "docker: running ($(docker version --format '{{.Server.Version}}'))" || echo "docker: stopped"
    registry_up && echo "registry: running at 127.0.0.1:$STRATA_REGISTRY_PORT" || echo "registry: stopped"
    if [ -f "$pg_dir/data/PG_VERSION" ]; then postgres_up && echo "postgres: running at 127.0.0.1:$STRATA_POSTGRES_PORT (cluster in $pg_dir)" || echo "postgres: stopped (cluster in $pg_dir)"; fi
    for entry in /proc/sys/fs/binfmt_misc/qemu-*; do [ -f "$entry" ] && echo "emulation: ${entry##*/} $(head -1 "$entry")"; done; true ;;
  *) echo "usage: $0 start|stop|status|gc|emulation os/arch ..." >&2; exit 2 ;;
esac
