"""The runs a worker process is working on right now, watched at a constant cost however many there are.

A gevent worker holds hundreds of steps at once. Each needs to notice a cancel quickly and to tell the sweep it is
alive; done per run, that was a Redis round trip per streamed chunk and a database connection per run every few
seconds. Here one background loop per process does it for all of them: every CANCEL_POLL_SECONDS one pipelined
EXISTS over their cancel flags, every HEARTBEAT_SECONDS one UPDATE stamping all their heartbeats. A step only
reads its own flag, in memory.

A step also has a deadline (its run's expiry): gevent and thread pools enforce no soft time limit, so the step
checks it itself, between chunks, like a cancel. And the heartbeat's UPDATE returns each run's current step_seq:
a step whose run moved on without it (expired by the sweep, redone elsewhere) learns so and stops.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from sqlalchemy import update

from shared import events
from shared.models import Run
from shared.rows import table as _table
from worker import store

log = logging.getLogger("worker.inflight")

CANCEL_POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 5.0


@dataclass
class Watch:
    run_id: str
    seq: int  # the step's compare-and-set token
    deadline: float  # time.time() after which the step gives up
    since: float = field(default_factory=time.monotonic)
    on_tick: Callable[[], None] | None = None  # called by the loop every CANCEL_POLL_SECONDS (e.g. a text flush)
    cancelled: bool = False
    superseded: bool = False  # the run moved on without this step (expired, redone elsewhere): its work is moot
    broken: BaseException | None = field(default=None)  # an infrastructure error met while streaming

    def should_stop(self) -> bool:
        return self.cancelled or self.superseded or self.broken is not None or time.time() >= self.deadline

    @property
    def overdue(self) -> bool:
        return time.time() >= self.deadline


class Tracker:
    def __init__(self) -> None:
        self._watches: dict[str, list[Watch]] = {}
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: threading.Thread | None = None

    @contextmanager
    def watch(self, run_id: str, seq: int, deadline: float) -> Iterator[Watch]:
        w = Watch(run_id, seq, deadline)
        with self._lock:
            self._watches.setdefault(run_id, []).append(w)
            self._ensure_loop()
        try:
            yield w
        finally:
            with self._lock:
                left = [x for x in self._watches.get(run_id, []) if x is not w]
                if left:
                    self._watches[run_id] = left
                else:
                    self._watches.pop(run_id, None)

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._watches)

    def _ensure_loop(self) -> None:
        # Started lazily and again after a fork: a prefork child inherits the dict but not the thread.
        if self._pid != os.getpid() or self._loop is None or not self._loop.is_alive():
            self._pid = os.getpid()
            self._loop = threading.Thread(target=self._run, name="inflight", daemon=True)
            self._loop.start()

    def _run(self) -> None:
        client = events.sync_client()
        last_beat = time.monotonic()
        while True:
            time.sleep(CANCEL_POLL_SECONDS)
            asked = time.monotonic()  # before the snapshot: what is watched later is not judged by this round
            ids = self.run_ids()
            if not ids:
                continue
            self._tick()
            try:
                self._poll_cancels(client, ids)
            except Exception:  # Redis away: a cancel is noticed once it is back (the run is discarded then)
                log.warning("cancel poll failed", exc_info=True)
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                try:
                    self._mark_superseded(asked, beat(ids, time.time()))
                except Exception:  # a missed beat only risks a harmless nudge from the sweep
                    log.warning("heartbeat failed", exc_info=True)

    def _tick(self) -> None:
        with self._lock:
            calls = [w.on_tick for watches in self._watches.values() for w in watches if w.on_tick is not None]
        for call in calls:
            try:
                call()
            except Exception:  # one step's trouble must not stop the loop that watches them all
                log.warning("in-flight tick failed", exc_info=True)

    def _poll_cancels(self, client: "redis.Redis[bytes]", ids: list[str]) -> None:
        pipe = client.pipeline(transaction=False)
        for run_id in ids:
            pipe.exists(events.cancel_key(run_id))
        flags = pipe.execute()
        with self._lock:
            for run_id, flag in zip(ids, flags, strict=True):
                if flag:
                    for w in self._watches.get(run_id, []):
                        w.cancelled = True

    def _mark_superseded(self, asked_at: float, current: dict[str, int]) -> None:
        """Steps whose run is at another step_seq now (or gone). Only steps watched before the question was asked
        are judged: a step starting meanwhile may be newer than what the answer saw."""
        with self._lock:
            for run_id, watches in self._watches.items():
                for w in watches:
                    if w.since < asked_at and current.get(run_id, -1) != w.seq:
                        w.superseded = True


def beat(run_ids: list[str], at: float) -> dict[str, int]:
    """Stamp the heartbeat of every run in `run_ids` (one statement, one short transaction); returns each one's
    current step_seq, by which a step learns that its run moved on without it."""
    t = _table(Run)
    with store.begin() as conn:
        rows = conn.execute(update(t).where(t.c.id.in_(run_ids)).values(heartbeat_at=at)
                            .returning(t.c.id, t.c.step_seq)).all()
    return {r.id: r.step_seq for r in rows}


TRACKER = Tracker()
