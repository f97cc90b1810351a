#!/usr/bin/env bash
# Makes a root filesystem tarball for a base layer (nothing can be pulled from Docker Hub).
#   make-rootfs.sh debian <out.tar>   Debian bookworm minbase via debootstrap (~200 MB, ~20 s plus download)
#   make-rootfs.sh busybox <out.tar>  a static busybox with its applets (tests and benchmarks; ~2 MB)
# Does nothing when <out.tar> exists (delete it to rebuild).
#
# Reproducible: the same inputs give a byte-identical tarball on any machine, in
# any folder, on any day, so two CI runners agree on the base layer's
# fingerprint (the tarball is in its build context) and on everything above it.
#   - every time stamp is SOURCE_DATE_EPOCH (default below; debootstrap and the
#     tools it runs also read it, e.g. for /etc/shadow's last-change day);
#   - entries sorted by name, numeric owners 0:0, GNU format;
#   - no logs, no caches that record inodes or times, an empty machine-id.
# The inputs are the mirror's packages: when the mirror moves (a point release,
# a security fix), a new tarball has other bytes, so the base layer's
# fingerprint changes and the whole tree rebuilds, as it should. The package
# list is written beside the tarball (<out.tar>.packages) so that two runners
# whose fingerprints differ can see why.
set -euo pipefail
source "$(dirname "$0")/env.sh"

# 2024-01-01T00:00:00Z. Any fixed value works; it only has to be the same everywhere.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}"

kind="${1:?usage: make-rootfs.sh debian|busybox <out.tar>}"
out="${2:?usage: make-rootfs.sh debian|busybox <out.tar>}"
[ -f "$out" ] && exit 0

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"

case "$kind" in
  debian)
    # The machine's own Debian mirror (its apt sources), unless STRATA_DEBIAN_MIRROR says otherwise.
    mirror="${STRATA_DEBIAN_MIRROR:-}"
    [ -n "$mirror" ] || mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    [ -n "$mirror" ] || mirror="$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
    [ -n "$mirror" ] || strata_die "no Debian mirror found in the apt sources; set STRATA_DEBIAN_MIRROR"
    strata_log "debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; strata_die "debootstrap failed (full log above)"; }
    # Trim what only the bootstrap needed; keep apt lists empty like official images.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    # ldconfig's aux-cache records inode numbers and change times: different on every run.
    rm -f "$root"/var/cache/ldconfig/aux-cache
    : > "$root/etc/machine-id"
    chroot "$root" dpkg-query -W -f '${Package}=${Version}\n' | LC_ALL=C sort > "$work/packages"
    ;;
  busybox)
    [ -x /bin/busybox ] || strata_die "no /bin/busybox: apt-get install busybox-static"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
      [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'root:x:0:' > "$root/etc/group"
    chmod 1777 "$root/tmp"
    ;;
  *) strata_die "unknown rootfs kind: $kind (debian or busybox)" ;;
esac

# Sorted, owner- and time-normalised, so the same tree gives the same tarball.
LC_ALL=C tar -C "$root" --format=gnu --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .
mkdir -p "$(dirname "$out")"
[ -f "$work/packages" ] && mv "$work/packages" "$out.packages"
mv "$work/rootfs.tar" "$out"
strata_log "wrote $out ($(du -h "$out" | cut -f1))"
