"""Run events on Redis Streams: workers (and the API, for the events it causes) append; any API replica reads.

One stream per run, `run:{id}:events`. Entries are `{event, data}` in the v2 shape; readers resume from any
entry id, so a client that reconnects with the last id it saw loses nothing. Streams are capped and expire.
"""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis

from shared.config import get_settings

RETENTION_SECONDS = 3600
MAX_ENTRIES = 20_000
XREAD_BLOCK_MS = 2000
# The events after which a stream of a run has nothing more to say until the run is acted on again.
CLOSING = frozenset({"thread.run.completed", "thread.run.failed", "thread.run.cancelled", "thread.run.expired",
                     "thread.run.incomplete", "thread.run.requires_action", "error"})
DONE = "done"


def key(run_id: str) -> str:
    return f"run:{run_id}:events"


def cancel_key(run_id: str) -> str:
    """Set by the API when a run is cancelled; a worker streaming from the model checks it and stops."""
    return f"run:{run_id}:cancel"


def encode(event: str, data: Any) -> dict[str, str]:
    return {"event": event, "data": data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))}


def publish(r: "redis.Redis[bytes]", run_id: str, events: list[tuple[str, Any]], *, refresh_ttl: bool = True) -> None:
    """Append events in order (one round trip). Token deltas pass refresh_ttl=False: the stream's expiry is
    set by the events around them, and a lone XADD skips the pipeline's client-side cost."""
    if len(events) == 1 and not refresh_ttl:
        r.xadd(key(run_id), encode(*events[0]), maxlen=MAX_ENTRIES, approximate=True)
        return
    pipe = r.pipeline(transaction=False)
    for event, data in events:
        pipe.xadd(key(run_id), encode(event, data), maxlen=MAX_ENTRIES, approximate=True)
    pipe.expire(key(run_id), RETENTION_SECONDS)
    pipe.execute()


async def apublish(r: "aioredis.Redis[bytes]", run_id: str, events: list[tuple[str, Any]]) -> str:
    """Append events; returns the id of the first, from which the caller's own stream starts."""
    pipe = r.pipeline(transaction=False)
    for event, data in events:
        pipe.xadd(key(run_id), encode(event, data), maxlen=MAX_ENTRIES, approximate=True)
    pipe.expire(key(run_id), RETENTION_SECONDS)
    ids = await pipe.execute()
    first = ids[0]
    return first.decode() if isinstance(first, bytes) else str(first)


def _before(entry_id: str) -> str:
    """The id just before `entry_id`, so that XREAD (exclusive) returns `entry_id` itself."""
    ms, _, n = entry_id.partition("-")
    return f"{ms}-{int(n) - 1}" if int(n or 0) > 0 else f"{int(ms) - 1}-{2**64 - 1}"


async def read(r: "aioredis.Redis[bytes]", run_id: str, *, start: str | None = None, after: str | None = None,
               idle_timeout: float = 600) -> AsyncIterator[tuple[str, str, str]]:
    """Yield (entry id, event, data) from `start` (inclusive) or `after` (exclusive) until a `done` entry."""
    cursor = _before(start) if start else (after or "0-0")
    deadline = time.monotonic() + idle_timeout
    while True:
        # Each wait is shorter than the client's socket timeout (redis-py 8: 5 s by default), which would cut a
        # longer XREAD block: a real model can be silent longer than that (a long prompt is read first).
        got = await r.xread({key(run_id): cursor}, block=min(XREAD_BLOCK_MS, int(idle_timeout * 1000)),
                            count=100)
        if not got:
            if time.monotonic() >= deadline:
                return  # nothing for idle_timeout: the run is stuck or gone; the client may reconnect
            continue
        deadline = time.monotonic() + idle_timeout
        for _stream, entries in got:
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                cursor = eid
                event = fields[b"event"].decode()
                data = fields[b"data"].decode()
                yield eid, event, data
                if event == DONE:
                    return


def sync_client() -> "redis.Redis[bytes]":
    return redis.Redis.from_url(get_settings().redis_url)


def async_client() -> "aioredis.Redis[bytes]":
    return aioredis.Redis.from_url(get_settings().redis_url)
