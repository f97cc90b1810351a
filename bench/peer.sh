#!/usr/bin/env bash
# The peer: what a team without Strata does. docker build every layer in
# dependency order (with the daemon's cache), then docker push every tag.
# Usage: peer.sh <catalog dir> <build-order.txt> <registry>/<group> <tag>
# Prints "built N changed M pushed P" on its last line.
set -euo pipefail
catalog="$1"; order="$2"; prefix="$3"; tag="$4"
export DOCKER_BUILDKIT=0
built=0; changed=0; pushed=0
while read -r layer parent image; do
  before="$(docker image inspect --format '{{.Id}}' "$prefix/$image:$tag" 2>/dev/null || true)"
  args=(--build-arg "STRATA_VERSION=$tag")
  [ "$parent" = "-" ] || args+=(--build-arg "BASE_IMAGE=$prefix/$(awk -v p="$parent" '$1 == p {print $3}' "$order"):$tag")
  # (the legacy builder prints a deprecation notice on every build: dropped)
  docker build -q "${args[@]}" -t "$prefix/$image:$tag" "$catalog/$layer" >/dev/null 2>"$catalog/.build-stderr" || { cat "$catalog/.build-stderr" >&2; exit 1; }
  built=$((built + 1))
  after="$(docker image inspect --format '{{.Id}}' "$prefix/$image:$tag")"
  [ "$before" = "$after" ] || changed=$((changed + 1))
done < "$order"
while read -r layer parent image; do
  docker push -q "$prefix/$image:$tag" >/dev/null
  pushed=$((pushed + 1))
done < "$order"
echo "built $built changed $changed pushed $pushed"
