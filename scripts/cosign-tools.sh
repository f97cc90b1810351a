#!/usr/bin/env bash
# cosign $STRATA_COSIGN_VERSION, which Strata runs to sign images and attest their SBOM and
# provenance offline with a key, and to verify them (issue 29).
#   scripts/cosign-tools.sh ensure   make it available: a cosign of exactly the pinned version on PATH
#                                    is used as it is (the usual install route on machines that
#                                    download); otherwise it is built once from Go modules into
#                                    $STRATA_HOME/cosign-<version>/bin (15 minutes here; reused after)
#   scripts/cosign-tools.sh path     print the binary's path (ensuring it first); its only output
#   scripts/cosign-tools.sh version  print the version of the binary `path` names
# STRATA_COSIGN_NO_BUILD=1: never build; `path` fails if there is nothing to use (tests, which must
# not start a 15-minute build behind a test's timeout).
set -euo pipefail
source "$(dirname "$0")/env.sh"
export PATH="$PATH:/usr/local/go/bin"

version="$STRATA_COSIGN_VERSION"
bin_dir="$STRATA_HOME/cosign-$version/bin"
cosign_bin="$bin_dir/cosign"
build_log="$STRATA_HOME/logs/build-cosign-$version.log"

# The version a cosign binary reports ("v2.6.5"), or nothing if it does not run.
version_of() { # <binary>
  "$1" version --json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1
}

# A cosign on PATH other than our own build, if it is exactly the pinned version; anything else
# (another version, one that does not run) is passed over, never half-trusted.
cosign_on_path() {
  local found; found="$(command -v cosign 2>/dev/null)" || return 1
  [ "$found" != "$cosign_bin" ] && [ "$(version_of "$found")" = "$version" ] && printf '%s\n' "$found"
}

build() {
  command -v go >/dev/null || strata_die "Go is needed to build cosign $version (/usr/local/go/bin/go), or put cosign $version on PATH"
  mkdir -p "$STRATA_HOME/logs"
  strata_log "building cosign $version from Go modules (12–15 minutes with a cold module cache on 2 busy cores; log: $build_log)"
  local started tmp; started="$(date +%s)"; tmp="$(mktemp -d)"
  # The version goes in through ldflags so `cosign version` reports it (the check above relies on
  # it). nice: the machine is shared with test runs.
  if ! GOBIN="$tmp" CGO_ENABLED=0 nice -n 10 go install -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$version" \
      "github.com/sigstore/cosign/v2/cmd/cosign@$version" >"$build_log" 2>&1; then
    tail -20 "$build_log" >&2; rm -rf "$tmp"
    strata_die "building cosign $version failed; see $build_log"
  fi
  local built; built="$(version_of "$tmp/cosign")"
  if [ "$built" != "$version" ]; then
    rm -rf "$tmp"; strata_die "the cosign just built reports version '${built:-none}', not $version; see $build_log"
  fi
  mkdir -p "$bin_dir"
  strata_move_whole "$tmp/cosign" "$cosign_bin" || { rm -rf "$tmp"; strata_die "cannot put the cosign just built at $cosign_bin"; }
  rm -rf "$tmp"
  strata_log "built cosign $version in $(( $(date +%s) - started )) s: $cosign_bin"
}

# Prints the path of the cosign to run, building it if there is none.
ensure() {
  local found
  strata_remove_old_partials "$cosign_bin"
  if found="$(cosign_on_path)"; then printf '%s\n' "$found"; return 0; fi
  if [ ! -x "$cosign_bin" ]; then
    [ "${STRATA_COSIGN_NO_BUILD:-}" = 1 ] && strata_die "cosign $version is not built ($cosign_bin) and STRATA_COSIGN_NO_BUILD=1: run scripts/cosign-tools.sh ensure"
    build
  fi
  printf '%s\n' "$cosign_bin"
}

case "${1:-}" in
  ensure) ensure >/dev/null ;;
  path) ensure ;;
  version) version_of "$(ensure)" ;;
  *) echo "usage: $0 ensure|path|version" >&2; exit 2 ;;
esac
