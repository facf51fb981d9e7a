"""Sessions bound to threads, and a warm pool to start them from.

A thread's session is the container named `sbx-thread-<thread id>`: Docker's unique names make that the
registry, shared by every worker and surviving worker restarts, and make "one session per thread" atomic.
Pool containers (`sbx-pool-…`, label assistants.pool=1) are started ahead with the heavy imports done; a
worker claims one with a Redis SET NX on its id, then renames it to the thread's name. Claimed containers are
never returned to the pool: a session is never reused for another thread.
"""

import contextlib
import time
import uuid
from typing import Any

import docker

from sandbox.container import CREATED_LABEL, LABEL, NAMESPACE_LABEL, Sandbox, SandboxError
from shared.config import Settings, get_settings

POOL_LABEL = "assistants.pool"
CLAIM_TTL = 3600
# A session slot whose container never appeared (its worker died while starting it) is freed after this long.
SLOT_GRACE_SECONDS = 120.0

# Take a session slot for a thread: already held, or free while fewer than the cap are held. Atomic in Redis, so
# workers on many hosts share one cap.
_ACQUIRE = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


class AtCapacity(Exception):
    """Every session slot (SANDBOX_MAX_SESSIONS) is taken."""


def thread_container_name(thread_id: str) -> str:
    return f"sbx-thread-{thread_id}"


def slots_key(namespace: str) -> str:
    """The Redis sorted set of a deployment's live sessions (thread id -> when its slot was taken)."""
    return f"sandbox:sessions:{namespace}"


def used_key(container_name: str) -> str:
    return f"sandbox:used:{container_name}"


class Pool:
    def __init__(self, dc: docker.DockerClient, redis: Any, settings: Settings | None = None) -> None:
        self.dc, self.redis, self.settings = dc, redis, settings or get_settings()
        self.slots_key = slots_key(self.settings.sandbox_namespace)
        self._acquire = redis.register_script(_ACQUIRE)

    def live_sessions(self) -> int:
        return int(self.redis.zcard(self.slots_key))

    def _take_slot(self, thread_id: str) -> None:
        cap = self.settings.sandbox_max_sessions
        if not self._acquire(keys=[self.slots_key], args=[thread_id, cap, time.time()]):
            raise AtCapacity(f"all {cap} code_interpreter sessions are in use")

    def _free_slot(self, thread_id: str) -> None:
        self.redis.zrem(self.slots_key, thread_id)

    def free(self) -> list[Any]:
        containers = self.dc.containers.list(filters={"label": [
            LABEL, f"{POOL_LABEL}=1", f"{NAMESPACE_LABEL}={self.settings.sandbox_namespace}"], "status": "running"})
        return [c for c in containers if c.name.startswith("sbx-pool-")]

    def warm(self, size: int) -> int:
        """Start pool containers until `size` are free; returns how many were started."""
        missing = size - len(self.free())
        for _ in range(max(0, missing)):
            Sandbox.start(name=f"sbx-pool-{uuid.uuid4().hex[:12]}", labels={POOL_LABEL: "1"},
                          settings=self.settings, docker_client=self.dc).detach()
        return max(0, missing)

    def session(self, thread_id: str, *, labels: dict[str, str] | None = None) -> tuple[Sandbox, bool]:
        """The thread's session, and whether it is new (its files must then be copied in). A new session needs
        a free slot: AtCapacity when SANDBOX_MAX_SESSIONS sessions are live."""
        name = thread_container_name(thread_id)
        with contextlib.suppress(docker.errors.NotFound, SandboxError):
            box = Sandbox.attach(self.dc.containers.get(name), settings=self.settings)
            self.redis.zadd(self.slots_key, {thread_id: time.time()}, nx=True)  # e.g. Redis lost its data
            return box, False
        self._take_slot(thread_id)
        try:
            return self._start_session(thread_id, name, labels)
        except BaseException:
            self._free_slot(thread_id)
            raise

    def _start_session(self, thread_id: str, name: str, labels: dict[str, str] | None) -> tuple[Sandbox, bool]:
        for container in self.free():
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

    def touch(self, thread_id: str) -> None:
        """Record a call on the thread's session (the reaper ends sessions idle for too long)."""
        self.redis.set(used_key(thread_container_name(thread_id)), str(time.time()), ex=CLAIM_TTL * 24)

    def maintain(self, size: int) -> dict[str, Any]:
        """Reap, then fill the warm pool up to `size` — one maintainer at a time per deployment: two at once (a
        worker starting while the beat ticks, two code workers starting together) would each find the pool short
        and both fill it. The second waits for the first, then finds nothing to do."""
        lock = self.redis.lock(f"sandbox:maintain:{self.settings.sandbox_namespace}", timeout=300,
                               blocking_timeout=300)
        if not lock.acquire():
            return {"reaped": [], "warmed": 0, "skipped": True}
        try:
            return {"reaped": self.reap(), "warmed": self.warm(size)}
        finally:
            with contextlib.suppress(Exception):  # expired meanwhile: someone else may hold it now
                lock.release()

    def reap(self, now: float | None = None) -> list[str]:
        """Remove this deployment's sandboxes that outlived their idle or total lifetime, or died; returns names.
        Run by the beat every minute and when a code worker starts, so a worker killed mid-call leaves nothing
        behind for long."""
        t = now if now is not None else time.time()
        s = self.settings
        gone, live = [], set()
        selector = {"label": [LABEL, f"{NAMESPACE_LABEL}={s.sandbox_namespace}"]}
        for c in self.dc.containers.list(all=True, filters=selector):
            created = float(c.labels.get(CREATED_LABEL, "0") or 0)
            used = self.redis.get(used_key(c.name))
            last = float(used) if used else created
            expired = t - created > s.sandbox_max_age_seconds
            idle = c.name.startswith("sbx-thread-") and t - last > s.sandbox_idle_seconds
            if c.status != "running" or expired or idle:
                self._remove(c)
                self.redis.delete(used_key(c.name))
                if c.name.startswith("sbx-thread-"):
                    self._free_slot(c.name.removeprefix("sbx-thread-"))
                gone.append(c.name)
            elif c.name.startswith("sbx-thread-"):
                live.add(c.name.removeprefix("sbx-thread-"))
        # Free the slots of sessions that are gone (reaped now, or removed behind our back).
        for member, taken in self.redis.zrange(self.slots_key, 0, -1, withscores=True):
            thread_id = member.decode() if isinstance(member, bytes) else member
            if thread_id not in live and t - taken > SLOT_GRACE_SECONDS:
                self._free_slot(thread_id)
        return gone

    def _remove(self, container: Any) -> None:
        volumes = [m["Name"] for m in container.attrs["Mounts"] if m.get("Type") == "volume"]
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
        for name in volumes:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.dc.volumes.get(name).remove(force=True)

    def end(self, thread_id: str) -> None:
        """Destroy the thread's session, whatever state it is in."""
        with contextlib.suppress(docker.errors.NotFound):
            self._remove(self.dc.containers.get(thread_container_name(thread_id)))
        self._free_slot(thread_id)
