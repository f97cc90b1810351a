#!/usr/bin/env bash
# Starts, stops and reports the local services Strata builds against:
#   the Docker engine: DOCKER_HOST's when the caller set it (used as it is, never started: it must
#     answer); otherwise the project's engine, started with scripts/engines.sh if not running
#     (moby $STRATA_DOCKERD_VERSION built from Go modules; STRATA_DOCKERD=debian: Debian's docker.io);
#   a registry (Debian's docker-registry) on 127.0.0.1:$STRATA_REGISTRY_PORT, Go's GC at GOGC=$STRATA_REGISTRY_GOGC (400),
#   storing under $STRATA_STATE/registry.
#   with STRATA_BACKEND=postgres, a PostgreSQL 15 cluster (Debian's postgresql) for Pulumi's state:
#     data under $STRATA_STATE/postgres (or, when the postgres user cannot enter the state folder,
#     as under root's 0700 home, in $STRATA_POSTGRES_DIR, default /var/lib/strata-postgres/<hash>),
#     127.0.0.1:$STRATA_POSTGRES_PORT only, role and database "strata", a password generated once
#     into $STRATA_STATE/postgres/pgpass (PGPASSFILE format, mode 600), never printed and never put
#     in a URL (env.sh points PGPASSFILE at it).
# Logs: $STRATA_STATE/logs/{engine,registry,postgres}.log
# Usage: scripts/services.sh start|stop|status|gc|emulation [os/arch ...]
#   emulation: lets this machine's engine run build steps of foreign platforms (linux/arm64, …):
#       installs Debian's qemu-user-static if missing, mounts binfmt_misc if needed (at
#       /proc/sys/fs/binfmt_misc; a $STRATA_BINFMT_DIR must already be a binfmt_misc mount) and
#       registers the platform's interpreter (scripts/platforms.tsv names it) from the package's
#       binfmt.d entry (root; idempotent). `start` does it too for the platforms in $STRATA_EMULATE
#       (space-separated).
#   gc: the registry's garbage collection (after strata ci-clean deleted manifests):
#       stops the registry this script runs, removes blobs no manifest references, starts it again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

logs="$STRATA_STATE/logs"
run="$STRATA_STATE/run"

registry_url="http://127.0.0.1:$STRATA_REGISTRY_PORT"

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
registry_up() { curl -fsS -o /dev/null "$registry_url/v2/" 2>/dev/null; }
# The project's engine (env.sh chose it: no DOCKER_HOST of the caller's), or the caller's.
project_engine() { [ "$DOCKER_HOST" = "unix://$STRATA_ENGINE_DIR/docker.sock" ]; }

start_docker() {
  if ! project_engine; then
    # The caller's engine: used as it is, never started or stopped here, and never replaced by
    # another one when it does not answer (the run would build somewhere the user did not say).
    docker_up || strata_die "DOCKER_HOST=$DOCKER_HOST names a Docker engine that does not answer. fix: start that engine, or unset DOCKER_HOST to let Strata start its own (scripts/engines.sh main start)"
    return 0
  fi
  docker_up && return 0
  "$(dirname "${BASH_SOURCE[0]}")/engines.sh" main start
  # Started here: `stop` stops it (an engine that was already running is left running).
  touch "$run/engine.started"
}

stop_docker() {
  [ -f "$run/engine.started" ] || return 0
  "$(dirname "${BASH_SOURCE[0]}")/engines.sh" main stop
  rm -f "$run/engine.started"
}

start_registry() {
  if registry_up; then return; fi
  # Warnings and errors only, no access log, blob descriptors cached in memory: at info the registry
  # wrote three lines per request, and with the access log they and the descriptor reads from disk
  # were a good part of its CPU in a cold run (README *Performance*, "The Pulumi side and the registry").
  cat > "$STRATA_STATE/registry/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $STRATA_STATE/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$STRATA_REGISTRY_PORT
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  # Go's GOGC=400 (STRATA_REGISTRY_GOGC; its own variable, so a GOGC exported for something else
  # does not reach it): the registry builds its URL router anew for every request (distribution
  # 2.8), and collecting that garbage was a good part of its CPU; with 400 a signing-like load of
  # 2700 requests (bench/registry-load.ts) took about a quarter less of its CPU (medians of six:
  # 6.6 -> 5.1 CPU-s; its resident memory 31 -> 49 MiB after the six) (README *What signing costs*).
  local gogc="${STRATA_REGISTRY_GOGC:-400}"
  strata_log "starting the registry on 127.0.0.1:$STRATA_REGISTRY_PORT, GOGC=$gogc (log: $logs/registry.log)"
  GOGC="$gogc" setsid docker-registry serve "$STRATA_STATE/registry/config.yml" >"$logs/registry.log" 2>&1 < /dev/null &
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

# The folders of the default cluster folder, Strata's own by name: the only ones whose mode it sets.
pg_default_root=/var/lib/strata-postgres

# The highest existing folder of a path that the postgres user cannot enter (empty when none).
pg_closed_folder() { # <path>
  local dir closed=""
  dir="$(realpath -m -s -- "$1")"
  while [ "$dir" != / ] && [ -n "$dir" ]; do
    if [ -e "$dir" ] && ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then closed="$dir"; fi
    dir="$(dirname "$dir")"
  done
  printf '%s' "$closed"
}

# Makes the cluster's folder (when the state folder is closed to the postgres user) and checks that
# the server's user can enter it. Folders it makes are made open (umask 022: a caller's 077 would
# close them to the server); a folder that already exists keeps its mode, unless it is the default's
# (/var/lib/strata-postgres/<hash>, Strata's own). A folder the user named is never opened up: it
# would open whatever is above it too (STRATA_POSTGRES_DIR=/root/pg would make /root readable).
open_pg_dir() {
  local named="${STRATA_POSTGRES_DIR:+ (STRATA_POSTGRES_DIR)}" closed
  if [ -z "$named" ]; then ( umask 022; mkdir -p "$pg_dir" ); chmod 755 "$pg_default_root" "$pg_dir"; fi
  # Nothing is made under a folder the server's user cannot enter.
  closed="$(pg_closed_folder "$pg_dir")"
  if [ -z "$closed" ] && [ ! -d "$pg_dir" ]; then ( umask 022; mkdir -p "$pg_dir" ); closed="$(pg_closed_folder "$pg_dir")"; fi
  [ -z "$closed" ] || strata_die "the postgres user cannot enter $pg_dir$named: $closed is closed to it, and Strata changes no mode of a folder it did not create. fix: let the postgres user enter $closed (chmod o+x $closed, if that is right for it), or set STRATA_POSTGRES_DIR to a folder it can enter (unset, the cluster lives in $pg_default_root/<hash>)"
}

start_postgres() {
  mkdir -p "$pg_home"
  if [ "$pg_dir" != "$pg_home" ]; then
    open_pg_dir
    strata_log "the state folder $STRATA_STATE is closed to the postgres user; the cluster lives in $pg_dir"
  fi
  mkdir -p "$pg_dir" "$(dirname "$pg_log")"
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

# The platforms and their interpreters: one table, read by core/platforms.ts too.
platform_table="$(dirname "${BASH_SOURCE[0]}")/platforms.tsv"
# Where binfmt_misc is mounted (STRATA_BINFMT_DIR, as the program reads it).
binfmt_dir="${STRATA_BINFMT_DIR:-/proc/sys/fs/binfmt_misc}"

qemu_name() { # os/arch[/variant] → the qemu-user-static binfmt name of its row in platforms.tsv
  awk -F'\t' -v platform="$1" '!/^#/ && $1 == platform { print $3; found = 1; exit } END { exit !found }' "$platform_table"
}

native_platform() { # this machine's platform: the row of platforms.tsv naming its uname -m
  awk -F'\t' -v machine="$(uname -m)" '!/^#/ { n = split($2, names, ","); for (i = 1; i <= n; i++) if (names[i] == machine) { print $1; found = 1; exit } }
    END { exit !found }' "$platform_table" || echo "linux/$(uname -m)"
}

register_emulation() { # os/arch ...
  local platform name native
  native="$(native_platform)"
  for platform in "$@"; do
    [ "$platform" = "$native" ] && continue
    name="$(qemu_name "$platform")" \
      || strata_die "no qemu-user-static interpreter for $platform in $platform_table (it lists $(awk -F'\t' '!/^#/ && NF { printf "%s%s", sep, $1; sep = ", " }' "$platform_table"))"
    [ -f "$binfmt_dir/$name" ] && [ "$(head -1 "$binfmt_dir/$name")" = enabled ] && continue
    [ "$(id -u)" = 0 ] || strata_die "registering $name for $platform builds needs root (sudo $0 emulation $platform)"
    if [ ! -f "$binfmt_dir/register" ]; then
      # A folder the user named is not mounted over: it must already be binfmt_misc.
      [ -z "${STRATA_BINFMT_DIR:-}" ] \
        || strata_die "STRATA_BINFMT_DIR=$binfmt_dir is not where binfmt_misc is mounted (it has no register file), so $name cannot be registered there: mount it (mount -t binfmt_misc binfmt_misc $binfmt_dir) or unset STRATA_BINFMT_DIR, then run $0 emulation $platform"
      mount -t binfmt_misc binfmt_misc "$binfmt_dir" \
        || strata_die "cannot mount binfmt_misc at $binfmt_dir (a container without that right?): $platform builds cannot run here; use an engine that builds $platform natively"
    fi
    if [ ! -f "/usr/lib/binfmt.d/$name.conf" ]; then
      strata_log "installing Debian's qemu-user-static"
      { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user-static >/dev/null; } \
        || strata_die "apt-get install qemu-user-static failed"
    fi
    # The package's entry has the F flag: the kernel opens the interpreter now, so it works inside build containers.
    [ -f "$binfmt_dir/$name" ] || cat "/usr/lib/binfmt.d/$name.conf" > "$binfmt_dir/register" \
      || strata_die "the kernel refused to register $name in $binfmt_dir"
    [ -f "$binfmt_dir/$name" ] || strata_die "$name is not in $binfmt_dir after registering it: is binfmt_misc mounted there?"
    [ "$(head -1 "$binfmt_dir/$name")" = enabled ] || echo 1 > "$binfmt_dir/$name"
    strata_log "$platform build steps run under emulation ($name, registered in $binfmt_dir)"
  done
}

# Sourced (test/unit/services-script.test.ts calls its functions on folders of its own): only define.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
mkdir -p "$logs" "$run" "$STRATA_STATE/registry/data"

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
  stop) stop_pidfile registry; stop_docker; stop_postgres ;;
  gc)
    [ -f "$STRATA_STATE/registry/config.yml" ] || strata_die "no registry config at $STRATA_STATE/registry/config.yml: start the services first"
    # The registry must not take pushes while blobs are swept (distribution's own rule): stop it.
    stop_pidfile registry
    # A registry these scripts did not start (no pid file) still answers: sweeping under it would
    # leave tags whose blobs are gone while its in-memory blob cache still says they are there.
    ! registry_up || strata_die "a registry these scripts did not start answers on 127.0.0.1:$STRATA_REGISTRY_PORT: stop it first, then run gc again (nothing was swept)"
    strata_log "garbage collection of $STRATA_STATE/registry/data"
    docker-registry garbage-collect "$STRATA_STATE/registry/config.yml" 2>&1 | grep -E '^(blob eligible|[0-9]+ blobs)' | tail -3 || true
    start_registry ;;
  status)
    docker_up && echo "docker: running at $DOCKER_HOST ($(docker version --format '{{.Server.Version}}'))" || echo "docker: stopped ($DOCKER_HOST)"
    registry_up && echo "registry: running at 127.0.0.1:$STRATA_REGISTRY_PORT" || echo "registry: stopped"
    if [ -f "$pg_dir/data/PG_VERSION" ]; then postgres_up && echo "postgres: running at 127.0.0.1:$STRATA_POSTGRES_PORT (cluster in $pg_dir)" || echo "postgres: stopped (cluster in $pg_dir)"; fi
    for entry in "$binfmt_dir"/qemu-*; do [ -f "$entry" ] && echo "emulation: ${entry##*/} $(head -1 "$entry")"; done; true ;;
  *) echo "usage: $0 start|stop|status|gc|emulation os/arch ..." >&2; exit 2 ;;
esac
