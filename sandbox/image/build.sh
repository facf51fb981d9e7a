#!/usr/bin/env bash
# Build the code_interpreter sandbox image without any container registry:
#   Debian rootfs by debootstrap (the Debian mirror is reachable) -> `docker import` -> base image,
#   then sandbox/image/Dockerfile adds the REPL server and a non-root user on top.
# Where a registry is reachable, SANDBOX_BASE=debian:bookworm-slim uses the official image instead
# (the Dockerfile then installs the same packages with apt).
# Usage: sandbox/image/build.sh [--force]      (no-op when the image exists, unless --force)
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${SANDBOX_IMAGE:-assistants-sandbox:latest}"
BASE="${SANDBOX_BASE:-assistants-sandbox-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Scientific Python from Debian's packages: what OpenAI's code interpreter offered, minus what the network is
# needed for (the sandbox has none).
PACKAGES="python3,python3-numpy,python3-pandas,python3-matplotlib,python3-scipy,python3-sympy,python3-openpyxl,\
python3-pil,python3-xlrd,python3-tabulate,python3-dateutil,python3-tz,fonts-dejavu-core,ca-certificates"

# The image is rebuilt when what goes into it changes (the REPL server, the Dockerfile); the base is kept.
SRC_HASH="$(cat sandbox/repl.py sandbox/image/Dockerfile | sha256sum | cut -c1-16)"
current="$(docker image inspect --format '{{ index .Config.Labels "assistants.sandbox.hash" }}' "$IMAGE" 2>/dev/null || true)"
if [ "${1:-}" != "--force" ] && [ "$current" = "$SRC_HASH" ]; then
  echo "sandbox image $IMAGE is up to date"
  exit 0
fi

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  root="$(mktemp -d /var/tmp/sandbox-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm into $root (a few minutes) ..."
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$MIRROR" >/var/tmp/sandbox-debootstrap.log 2>&1 \
    || { tail -20 /var/tmp/sandbox-debootstrap.log; exit 1; }
  # Nothing of apt's caches or lists is needed at run time.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$BASE" >/dev/null
fi

docker build -q -t "$IMAGE" --build-arg BASE="$BASE" --build-arg SRC_HASH="$SRC_HASH" \
  -f sandbox/image/Dockerfile sandbox \
  >/var/tmp/sandbox-build.log 2>&1 || { cat /var/tmp/sandbox-build.log; exit 1; }
echo "built sandbox image $IMAGE"
