#!/bin/sh
# A Docker engine for code_interpreter sandboxes on this machine: installed from Debian's packages and started
# when missing, with gVisor's runsc registered as an optional runtime (SANDBOX_RUNTIME=runsc). With DOCKER_HOST
# set the engine lives elsewhere and nothing here runs. An engine that is already running is left as it is.
set -eu
[ -z "${DOCKER_HOST:-}" ] || exit 0
missing=""
command -v debootstrap >/dev/null || missing="$missing debootstrap"
command -v runsc >/dev/null || missing="$missing runsc"
docker info >/dev/null 2>&1 && running=1 || running=0
[ "$running" = 1 ] || command -v dockerd >/dev/null || missing="$missing docker.io"
if [ -n "$missing" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing >/dev/null
fi
[ "$running" = 0 ] || exit 0
# Our own engine: register gVisor, unless the machine already has a daemon configuration of its own. Its
# --network=none keeps gVisor's netstack off too (sandboxes run with --network none either way).
if [ ! -e /etc/docker/daemon.json ]; then
  mkdir -p /etc/docker
  printf '%s\n' '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}}' \
    > /etc/docker/daemon.json
fi
(nohup dockerd >/var/log/assistants-dockerd.log 2>&1 &)
for _ in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
tail -20 /var/log/assistants-dockerd.log
exit 1
