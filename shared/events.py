"""Run events on Redis Streams: workers (and the API, for the events it causes) append; any API replica reads.

One stream per run, `run:{id}:events`. Entries are `{event, data}` in the v2 shape; readers resume from any
entry id, so a client that reconnects with the last id it saw loses nothing. Streams are capped, and expire:
an active run's after an hour without events, a finished run's a few minutes after its end — long enough for a
client to reconnect and read the end, short enough that Redis (also the broker, with no eviction) stays flat
whatever the rate of runs.
"""

import json
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis

from shared.config import get_settings

ACTIVE_RETENTION_SECONDS = 3600
MAX_ENTRIES = 20_000
# The events after which a stream of a run has nothing more to say until the run is acted on again.
CLOSING = frozenset({"thread.run.completed", "thread.run.failed", "thread.run.cancelled", "thread.run.expired",
                     "thread.run.incomplete", "thread.run.requires_action", "error"})
# After these, nothing more will ever be said: the stream is kept only for clients that reconnect.
FINAL = CLOSING - {"thread.run.requires_action"}
DONE = "done"


def key(run_id: str) -> str:
    return f"run:{run_id}:events"


def cancel_key(run_id: str) -> str:
    """Set by the API when a run is cancelled; a worker streaming from the model checks it and stops."""
    return f"run:{run_id}:cancel"


def encode(event: str, data: Any) -> dict[str, str]:
    return {"event": event, "data": data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))}


def retention(events: list[tuple[str, Any]]) -> int:
    """Seconds a stream is kept after these events: short once the run has ended."""
    if any(name in FINAL for name, _ in events):
        return get_settings().run_events_retention_seconds
    return ACTIVE_RETENTION_SECONDS


def queue_in(pipe: "redis.client.Pipeline[bytes]", run_id: str, events: list[tuple[str, Any]], *,
             refresh_ttl: bool = True) -> None:
    """Add the appends of `events` (and the stream's new expiry) to a pipeline. Token deltas pass
    refresh_ttl=False: the stream's expiry is set by the events around them."""
    for event, data in events:
        pipe.xadd(key(run_id), encode(event, data), maxlen=MAX_ENTRIES, approximate=True)
    if refresh_ttl:
        pipe.expire(key(run_id), retention(events))


def publish(r: "redis.Redis[bytes]", run_id: str, events: list[tuple[str, Any]], *, refresh_ttl: bool = True) -> None:
    """Append events in order, in one round trip."""
    pipe = r.pipeline(transaction=False)
    queue_in(pipe, run_id, events, refresh_ttl=refresh_ttl)
    pipe.execute()


async def apublish(r: "aioredis.Redis[bytes]", run_id: str, events: list[tuple[str, Any]]) -> str:
    """Append events; returns the id of the first, from which the caller's own stream starts."""
    pipe = r.pipeline(transaction=False)
    for event, data in events:
        pipe.xadd(key(run_id), encode(event, data), maxlen=MAX_ENTRIES, approximate=True)
    pipe.expire(key(run_id), retention(events))
    ids = await pipe.execute()
    first = ids[0]
    return first.decode() if isinstance(first, bytes) else str(first)


def sync_client() -> "redis.Redis[bytes]":
    """A client of its own (e.g. for a component that keeps one); most code wants `shared_client()`. Its
    commands time out like the shared pool's: a half-open connection after a failover must not hang its user."""
    s = get_settings()
    return redis.Redis.from_url(s.redis_url, socket_timeout=s.redis_socket_timeout_seconds,
                                socket_connect_timeout=s.redis_socket_timeout_seconds, health_check_interval=30)


@lru_cache
def shared_client() -> "redis.Redis[bytes]":
    """The process's client for short commands. Its pool is bounded: a gevent worker runs hundreds of steps at
    once, and they share a few connections (waiting for one, briefly) rather than opening one each."""
    s = get_settings()
    pool = redis.BlockingConnectionPool.from_url(s.redis_url, max_connections=s.redis_max_connections,
                                                 timeout=s.redis_pool_timeout_seconds,
                                                 socket_timeout=s.redis_socket_timeout_seconds,
                                                 socket_connect_timeout=s.redis_socket_timeout_seconds,
                                                 health_check_interval=30)
    return redis.Redis(connection_pool=pool)


def async_client() -> "aioredis.Redis[bytes]":
    """The API's client for short commands (bounded like `shared_client`); blocking reads have their own."""
    s = get_settings()
    pool: aioredis.BlockingConnectionPool[Any] = aioredis.BlockingConnectionPool.from_url(
        s.redis_url, max_connections=s.redis_max_connections,
        timeout=s.redis_pool_timeout_seconds, socket_timeout=s.redis_socket_timeout_seconds,
        socket_connect_timeout=s.redis_socket_timeout_seconds, health_check_interval=30)
    return aioredis.Redis(connection_pool=pool)
