#!/usr/bin/env bash
# Makes a root filesystem tarball for a base layer (nothing can be pulled from Docker Hub).
#   make-rootfs.sh debian <out.tar>   Debian bookworm minbase via debootstrap (~200 MB, ~20 s plus download)
#   make-rootfs.sh busybox <out.tar>  a static busybox with its applets (tests and benchmarks; ~2 MB)
#   make-rootfs.sh debian|busybox <out.tar> <os/arch>  the same for another platform (linux/arm64):
#       Debian's packages of that architecture (dpkg --add-architecture; debootstrap --foreign, then
#       its second stage under emulation: scripts/services.sh emulation <os/arch> first).
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

kind="${1:?usage: make-rootfs.sh debian|busybox <out.tar> [os/arch]}"
out="${2:?usage: make-rootfs.sh debian|busybox <out.tar> [os/arch]}"
platform="${3:-}"
strata_remove_old_partials "$out"
[ -f "$out" ] && exit 0

native_arch="$(dpkg --print-architecture)"
arch="$native_arch"
if [ -n "$platform" ]; then
  case "$platform" in
    linux/amd64) arch=amd64 ;; linux/arm64) arch=arm64 ;; linux/arm/v7) arch=armhf ;; linux/386) arch=i386 ;;
    linux/ppc64le) arch=ppc64el ;; linux/s390x) arch=s390x ;; linux/riscv64) arch=riscv64 ;;
    *) strata_die "make-rootfs.sh: no Debian architecture for $platform (linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x, linux/riscv64)" ;;
  esac
fi
foreign_hint="run scripts/services.sh emulation $platform first (as root), so this machine can run $arch binaries"

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-rootfs.XXXXXX")"
# debootstrap mounts the host's /proc (and /sys) inside the tree and unmounts them as it ends, but
# not when it is killed (a Ctrl-C, a CI job cancelled), and an rm -rf of the tree then walked into
# them while they were still mounted: strata_remove_tree unmounts first and never deletes through one.
trap 'strata_remove_tree "$work"' EXIT
root="$work/root"
mkdir -p "$root"

case "$kind" in
  debian)
    # And debootstrap runs in a mount namespace of its own where this machine allows one (root, or a
    # container with the right): its mounts are never the host's and go with it, even under SIGKILL,
    # when no clean-up runs at all. (Without one, a SIGKILL leaves them, as it leaves the folder.)
    own_mounts=()
    unshare --mount --propagation private true 2>/dev/null && own_mounts=(unshare --mount --propagation private)
    # The machine's own Debian mirror (its apt sources), unless STRATA_DEBIAN_MIRROR says otherwise.
    mirror="${STRATA_DEBIAN_MIRROR:-}"
    [ -n "$mirror" ] || mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    [ -n "$mirror" ] || mirror="$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
    [ -n "$mirror" ] || strata_die "no Debian mirror found in the apt sources; set STRATA_DEBIAN_MIRROR"
    strata_log "debootstrap --variant=minbase bookworm from $mirror"
    if [ "$arch" = "$native_arch" ]; then
      "${own_mounts[@]}" debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; strata_die "debootstrap failed (full log above)"; }
    else
      # The first stage unpacks $arch packages; the second runs their scripts, which needs emulation.
      strata_log "debootstrap --arch $arch: first stage, then the second under emulation"
      "${own_mounts[@]}" debootstrap --arch="$arch" --foreign --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; strata_die "debootstrap --foreign failed (full log above)"; }
      chroot "$root" /bin/true 2>/dev/null || strata_die "cannot run $arch binaries: $foreign_hint"
      "${own_mounts[@]}" chroot "$root" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; strata_die "debootstrap's second stage failed (full log above)"; }
    fi
    # Trim what only the bootstrap needed; keep apt lists empty like official images.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    # ldconfig's aux-cache records inode numbers and change times: different on every run.
    rm -f "$root"/var/cache/ldconfig/aux-cache
    : > "$root/etc/machine-id"
    chroot "$root" dpkg-query -W -f '${Package}=${Version}\n' | LC_ALL=C sort > "$work/packages"
    ;;
  busybox)
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
    if [ "$arch" = "$native_arch" ]; then
      [ -x /bin/busybox ] || strata_die "no /bin/busybox: apt-get install busybox-static"
      cp /bin/busybox "$root/bin/busybox"
    else
      # Debian's busybox-static for $arch, from the machine's own apt sources.
      if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        [ "$(id -u)" = 0 ] || strata_die "Debian's $arch packages need dpkg --add-architecture $arch (root)"
        dpkg --add-architecture "$arch"
        apt-get update -q >/dev/null
      fi
      (cd "$work" && apt-get download -q "busybox-static:$arch" >/dev/null 2>&1) \
        || { apt-get update -q >/dev/null && (cd "$work" && apt-get download -q "busybox-static:$arch" >/dev/null); } \
        || strata_die "apt-get download busybox-static:$arch failed"
      dpkg-deb -x "$work"/busybox-static_*_"$arch".deb "$work/deb"
      cp "$work/deb/bin/busybox" "$root/bin/busybox"
      "$root/bin/busybox" true 2>/dev/null || strata_die "cannot run the $arch busybox to list its applets: $foreign_hint"
    fi
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
# The package list first, so a tarball under its name always has its list; the tarball whole or
# not at all (the script does nothing when it exists).
[ -f "$work/packages" ] && mv "$work/packages" "$out.packages"
strata_move_whole "$work/rootfs.tar" "$out"
strata_log "wrote $out ($(du -h "$out" | cut -f1))"
