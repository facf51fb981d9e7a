"""One Redis reader per API process for every run stream its clients follow.

A client following a run used to hold a blocked XREAD of its own: a Redis connection per open stream (Redis
allows 10,000 clients by default, and that is also the broker's). Here one task per process issues a single
`XREAD BLOCK` over all the streams followed in this process and hands each entry to the followers of its run, so
an open stream costs the API a queue and Redis nothing more than this process's one reading connection.

Each follower keeps its own cursor, so a client resuming from an old event reads its backlog while others read
live. A follower joining wakes the reader through the process's own wake stream (an XADD), so its first events
are not held up by a BLOCK already in progress. Under load the reader pauses briefly between reads that found
entries (see `pause_after`), so that each read, which names every followed stream, carries many entries rather
than one. When Redis is away the reader retries with backoff; followers
just wait (their streams send keep-alives), and resume from their cursors when it is back.
"""

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared import events
from shared.config import get_settings

log = logging.getLogger("api.relay")

BLOCK_MS = 5000  # each XREAD returns at least this often, so a dead connection is noticed
COUNT = 200  # entries per stream per read
# An XREAD's cost grows with the streams it names (~0.3 ms of Redis for 50), and under load each read would find
# one fresh entry and the next follow at once: 230 reads a second for 100 streamed runs. Pausing after a read
# that found entries lets them gather. The pause grows with the streams followed, so that one client watching
# one run waits a millisecond, and never exceeds a fraction of the runs workers' own text flush (0.1 s).
PAUSE_PER_STREAM_SECONDS = 0.001
MAX_PAUSE_SECONDS = 0.04


ENTRY_ID = re.compile(r"\d{1,20}(-\d{1,20})?")


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


def pause_after(found_entries: bool, streams: int) -> float:
    """Seconds to wait before the next read: none after a read that found nothing (it blocked until the end)."""
    return min(MAX_PAUSE_SECONDS, PAUSE_PER_STREAM_SECONDS * streams) if found_entries else 0.0


def before(entry_id: str) -> str:
    """The id just before `entry_id`, so that XREAD (exclusive) returns `entry_id` itself."""
    ms, n = id_key(entry_id)
    return f"{ms}-{n - 1}" if n > 0 else f"{ms - 1}-{2**64 - 1}"


@dataclass(eq=False)
class Follower:
    run_id: str
    cursor: str  # the last entry id handed to this follower
    queue: asyncio.Queue[tuple[str, str, str]] = field(default_factory=asyncio.Queue)


class Relay:
    def __init__(self) -> None:
        self.followers: dict[str, set[Follower]] = {}
        # Where the next read of each followed stream starts: the oldest cursor among its followers (kept as they
        # join and as entries are delivered, rather than worked out from every follower on every read).
        self._cursors: dict[str, str] = {}
        self._wake_key = f"relay:wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._task: asyncio.Task[None] | None = None
        self._reader: aioredis.Redis[bytes] | None = None

    @asynccontextmanager
    async def follow(self, run_id: str, cursor: str) -> AsyncIterator[Follower]:
        """Entries of `run_id`'s stream after `cursor`, as they come, on the follower's queue."""
        f = Follower(run_id, cursor)
        self.followers.setdefault(run_id, set()).add(f)
        key = events.key(run_id)
        if key not in self._cursors or id_key(cursor) < id_key(self._cursors[key]):
            self._cursors[key] = cursor
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        else:
            await self._wake()
        try:
            yield f
        finally:
            group = self.followers.get(run_id)
            if group is not None:
                group.discard(f)
                if not group:
                    del self.followers[run_id]
                    self._cursors.pop(events.key(run_id), None)

    async def _wake(self) -> None:
        from api.dispatch import redis_client

        try:
            pipe = redis_client().pipeline(transaction=False)
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=True)
            pipe.expire(self._wake_key, 300)
            await pipe.execute()
        except RedisError:  # the reader is retrying anyway, and will include this follower then
            log.warning("could not wake the relay (Redis unavailable)")

    def _client(self) -> "aioredis.Redis[bytes]":
        if self._reader is None:
            # Its own connection: a blocked read must not hold one of the pool's. Its timeout outlasts BLOCK_MS.
            self._reader = aioredis.Redis.from_url(get_settings().redis_url, single_connection_client=True,
                                                   socket_timeout=BLOCK_MS / 1000 + 10, socket_connect_timeout=5)
        return self._reader

    async def _run(self) -> None:
        delay = 0.2
        while self.followers:  # ends when nobody follows; the next follow() starts it again
            streams = {self._wake_key: self._wake_cursor, **self._cursors}
            try:
                got = await self._client().xread(streams, block=BLOCK_MS, count=COUNT)
                delay = 0.2
                for stream, entries in got or []:
                    name = stream.decode() if isinstance(stream, bytes) else stream
                    self._deliver(name, id_key(streams[name]), entries)
                pause = pause_after(bool(got), len(self._cursors))
                if pause:
                    await asyncio.sleep(pause)
            except asyncio.CancelledError:
                await self._reset()
                raise
            except Exception as exc:  # Redis away, or a bug: the loop must go on for every stream of this process
                if isinstance(exc, RedisError | OSError):
                    log.warning("relay read failed (%s: %s); retrying in %.1f s", exc.__class__.__name__, exc, delay)
                else:
                    log.exception("relay read failed; retrying in %.1f s", delay)
                await self._reset()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _deliver(self, stream: str, read_from: tuple[int, int],
                 entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Hand a read's entries to the stream's followers. A follower whose cursor is older than where this read
        started (it joined, resuming, while the read was under way) gets nothing from it: the next read starts
        at its cursor, so the entries in between reach it in order."""
        if stream == self._wake_key:
            self._wake_cursor = entries[-1][0].decode()
            return
        run_id = stream.removeprefix("run:").removesuffix(":events")
        decoded = [(raw_id.decode(), fields[b"event"].decode(), fields[b"data"].decode()) for raw_id, fields in entries]
        keys = [id_key(entry_id) for entry_id, _, _ in decoded]
        group = self.followers.get(run_id, set())
        for f in group:
            mine = id_key(f.cursor)
            if mine < read_from:
                continue
            for key, entry in zip(keys, decoded, strict=True):
                if key > mine:
                    f.queue.put_nowait(entry)
            f.cursor = max(f.cursor, decoded[-1][0], key=id_key)
        if group:
            self._cursors[stream] = min((f.cursor for f in group), key=id_key)

    async def _reset(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            try:
                await reader.close()
            except Exception:  # already broken: nothing to close cleanly
                log.debug("closing the relay connection failed", exc_info=True)


_relay: Relay | None = None


def relay() -> Relay:
    global _relay
    if _relay is None:
        _relay = Relay()
    return _relay
