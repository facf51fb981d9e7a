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

[ "$BASE" != assistants-sandbox-base:bookworm ] || deploy/docker/debian-base.sh "$BASE" "$PACKAGES"

docker build -q -t "$IMAGE" --build-arg BASE="$BASE" --build-arg SRC_HASH="$SRC_HASH" \
  -f sandbox/image/Dockerfile sandbox \
  >/var/tmp/sandbox-build.log 2>&1 || { cat /var/tmp/sandbox-build.log; exit 1; }
echo "built sandbox image $IMAGE"
