"""Sessions bound to threads, and a warm pool to start them from.

A thread's session is the container named `sbx-thread-<thread id>`: Docker's unique names make that the
registry, shared by every worker and surviving worker restarts, and make "one session per thread" atomic.
Pool containers (`sbx-pool-…`, label assistants.pool=1) are started ahead with the heavy imports done; a
worker claims one with a Redis SET NX on its id, then renames it to the thread's name. Claimed containers are
never returned to the pool: a session is never reused for another thread.
"""

import contextlib
import uuid
from typing import Any

import docker

from sandbox.container import LABEL, NAMESPACE_LABEL, Sandbox, SandboxError
from shared.config import Settings, get_settings

POOL_LABEL = "assistants.pool"
CLAIM_TTL = 3600


def thread_container_name(thread_id: str) -> str:
    return f"sbx-thread-{thread_id}"


class Pool:
    def __init__(self, dc: docker.DockerClient, redis: Any, settings: Settings | None = None) -> None:
        self.dc, self.redis, self.settings = dc, redis, settings or get_settings()

    def _free(self) -> list[Any]:
        containers = self.dc.containers.list(filters={"label": [
            LABEL, f"{POOL_LABEL}=1", f"{NAMESPACE_LABEL}={self.settings.sandbox_namespace}"], "status": "running"})
        return [c for c in containers if c.name.startswith("sbx-pool-")]

    def warm(self, size: int) -> int:
        """Start pool containers until `size` are free; returns how many were started."""
        missing = size - len(self._free())
        for _ in range(max(0, missing)):
            Sandbox.start(name=f"sbx-pool-{uuid.uuid4().hex[:12]}", labels={POOL_LABEL: "1"},
                          settings=self.settings, docker_client=self.dc).detach()
        return max(0, missing)

    def session(self, thread_id: str, *, labels: dict[str, str] | None = None) -> tuple[Sandbox, bool]:
        """The thread's session, and whether it is new (its files must then be copied in)."""
        name = thread_container_name(thread_id)
        with contextlib.suppress(docker.errors.NotFound, SandboxError):
            return Sandbox.attach(self.dc.containers.get(name), settings=self.settings), False
        for container in self._free():
            if not self.redis.set(f"sandbox:claim:{container.id}", thread_id, nx=True, ex=CLAIM_TTL):
                continue  # another worker got it first
            try:
                container.rename(name)
            except docker.errors.APIError:
                # Another worker created this thread's session meanwhile: use that one, drop the claimed one.
                self.dc.containers.get(container.id).remove(force=True)
                return Sandbox.attach(self.dc.containers.get(name), settings=self.settings), False
            return Sandbox.attach(container, settings=self.settings), True
        # Pool empty: start cold (slower, same result).
        box = Sandbox.start(name=name, labels={"assistants.thread": thread_id, **(labels or {})},
                            settings=self.settings, docker_client=self.dc)
        return box, True

    def end(self, thread_id: str) -> None:
        """Destroy the thread's session, whatever state it is in."""
        with contextlib.suppress(docker.errors.NotFound):
            container = self.dc.containers.get(thread_container_name(thread_id))
            volumes = [m["Name"] for m in container.attrs["Mounts"] if m.get("Type") == "volume"]
            container.remove(force=True)
            for name in volumes:
                with contextlib.suppress(docker.errors.NotFound):
                    self.dc.volumes.get(name).remove(force=True)
