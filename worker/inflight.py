"""The runs a worker process is working on right now, watched at a constant cost however many there are.

A gevent worker holds hundreds of steps at once. Each needs to notice a cancel quickly and to tell the sweep it is
alive; done per run, that was a Redis round trip per streamed chunk and a database connection per run every few
seconds. Here one background loop per process does it for all of them: every CANCEL_POLL_SECONDS one pipelined
EXISTS over their cancel flags, every HEARTBEAT_SECONDS one UPDATE stamping all their heartbeats. A step only
reads its own flag, in memory.

A step also has a deadline (the run's expiry, or a cap for tool work): gevent and thread pools enforce no soft
time limit, so the step checks it itself, between chunks, like a cancel.
"""

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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
    deadline: float  # time.time() after which the step gives up
    cancelled: bool = False
    broken: BaseException | None = field(default=None)  # an infrastructure error met while streaming

    def should_stop(self) -> bool:
        return self.cancelled or self.broken is not None or time.time() >= self.deadline

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
    def watch(self, run_id: str, deadline: float) -> Iterator[Watch]:
        w = Watch(run_id, deadline)
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
        redis = events.sync_client()
        last_beat = time.monotonic()
        while True:
            time.sleep(CANCEL_POLL_SECONDS)
            ids = self.run_ids()
            if not ids:
                continue
            try:
                self._poll_cancels(redis, ids)
            except Exception:  # Redis away: a cancel is noticed once it is back (the run is discarded then)
                log.warning("cancel poll failed", exc_info=True)
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                try:
                    beat(ids, time.time())
                except Exception:  # a missed beat only risks a harmless nudge from the sweep
                    log.warning("heartbeat failed", exc_info=True)

    def _poll_cancels(self, redis: object, ids: list[str]) -> None:
        pipe = redis.pipeline(transaction=False)  # type: ignore[attr-defined]
        for run_id in ids:
            pipe.exists(events.cancel_key(run_id))
        flags = pipe.execute()
        with self._lock:
            for run_id, flag in zip(ids, flags, strict=True):
                if flag:
                    for w in self._watches.get(run_id, []):
                        w.cancelled = True


def beat(run_ids: list[str], at: float) -> None:
    """Stamp the heartbeat of every run in `run_ids`: one statement, one short transaction."""
    t = _table(Run)
    with store.begin() as conn:
        conn.execute(update(t).where(t.c.id.in_(run_ids)).values(heartbeat_at=at))


TRACKER = Tracker()
