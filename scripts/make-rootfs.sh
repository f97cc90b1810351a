#!/usr/bin/env bash
# Makes a root filesystem tarball for a base layer (nothing can be pulled from Docker Hub).
#   make-rootfs.sh debian <out.tar>   Debian bookworm minbase via debootstrap (~200 MB, ~20 s plus download)
#   make-rootfs.sh busybox <out.tar>  a static busybox with its applets (tests and benchmarks; ~2 MB)
# Does nothing when <out.tar> exists (delete it to rebuild): a new tarball has new
# contents (logs, timestamps inside files) and would rebuild the whole tree.
set -euo pipefail
source "$(dirname "$0")/env.sh"

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
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    : > "$root/etc/machine-id"
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
tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .
mkdir -p "$(dirname "$out")"
mv "$work/rootfs.tar" "$out"
strata_log "wrote $out ($(du -h "$out" | cut -f1))"
