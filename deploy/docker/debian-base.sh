#!/usr/bin/env bash
# A Debian bookworm base image without any registry: debootstrap a minimal rootfs with the given packages (the
# Debian mirror is reachable), then `docker import` it. No-op when the image exists.
# Usage: deploy/docker/debian-base.sh IMAGE PACKAGES(comma-separated)
set -euo pipefail
IMAGE="$1"
PACKAGES="$2"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
command -v debootstrap >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null; }
root="$(mktemp -d /var/tmp/rootfs.XXXXXX)"
log="/var/tmp/debootstrap-${IMAGE//[:\/]/-}.log"
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm for $IMAGE into $root (a few minutes) ..."
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$MIRROR" >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
# Nothing of apt's caches or lists is needed at run time.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$IMAGE" >/dev/null
