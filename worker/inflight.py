"""The runs a worker process is working on right now, watched at a constant cost however many there are.

A gevent worker holds hundreds of steps at once. Each needs to notice a cancel quickly and to tell the sweep it is
alive; done per run, that was a Redis round trip per streamed chunk and a database connection per run every few
seconds. Here two background loops per process do it for all of them: every CANCEL_POLL_SECONDS one pipelined
EXISTS over their cancel flags (and each step's tick, e.g. flushing its streamed text); every HEARTBEAT_SECONDS
one UPDATE stamping all their heartbeats, and one pipeline renewing their leases. A step only reads its own flags,
in memory. The loops are separate so that a slow database never delays a cancel.

A step holds a lease on (run, step_seq) while it works — a Redis key taken with SET NX, renewed by the slow loop,
and dropped when the step ends — so that a second task for the same step (the sweep's nudge while the first
waited in a long queue, a redelivery) cannot run it at the same time: it finds the lease held and stands down.
If the worker dies, its leases lapse within LEASE_SECONDS, before the sweep (RUN_STALE_RUNNING_SECONDS) takes
the run for lost.

A step also has a deadline (its run's expiry): gevent and thread pools enforce no soft time limit, so the step
checks it itself, between chunks, like a cancel. And the heartbeat's UPDATE returns each run's current step_seq:
a step whose run moved on without it (expired by the sweep, redone elsewhere) learns so and stops.
"""

import logging
import os
import threading
import time
import uuid
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
LEASE_SECONDS = 20  # renewed every HEARTBEAT_SECONDS; lapses this long after its holder died

# Drop the lease only if it is still ours (it may have lapsed and been taken by another task since).
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"""


def lease_key(run_id: str, seq: int) -> str:
    return f"run:{run_id}:lease:{seq}"


class Duplicate(Exception):
    """Another task holds this step's lease: it is running the step now."""


@dataclass
class Watch:
    run_id: str
    seq: int  # the step's compare-and-set token
    deadline: float  # time.time() after which the step gives up
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # this task's hold on the step's lease
    on_tick: Callable[[], None] | None = None  # called by the loop every CANCEL_POLL_SECONDS (e.g. a text flush)
    cancelled: bool = False
    superseded: bool = False  # the run moved on without this step (expired, redone elsewhere): its work is moot
    broken: BaseException | None = field(default=None)  # an infrastructure error met while streaming

    def should_stop(self) -> bool:
        return self.cancelled or self.superseded or self.broken is not None or time.time() >= self.deadline


class Tracker:
    def __init__(self) -> None:
        self._watches: dict[str, list[Watch]] = {}
        self._lock = threading.Lock()
        self._pid = 0
        self._loops: list[threading.Thread] = []

    @contextmanager
    def watch(self, run_id: str, seq: int, deadline: float) -> Iterator[Watch]:
        """Watch a step while it works; raises Duplicate if another task is running the same step."""
        w = Watch(run_id, seq, deadline)
        client = events.shared_client()
        if not client.set(lease_key(run_id, seq), w.token, nx=True, ex=LEASE_SECONDS):
            raise Duplicate(f"step {seq} of {run_id} is being run by another task")
        with self._lock:
            self._watches.setdefault(run_id, []).append(w)
            self._ensure_loops()
        try:
            yield w
        finally:
            with self._lock:
                left = [x for x in self._watches.get(run_id, []) if x is not w]
                if left:
                    self._watches[run_id] = left
                else:
                    self._watches.pop(run_id, None)
            try:
                client.eval(_RELEASE, 1, lease_key(run_id, seq), w.token)  # type: ignore[no-untyped-call]
            except redis.RedisError:  # it lapses by itself
                log.warning("run %s: lease not released", run_id, exc_info=True)

    def watched(self) -> list[Watch]:
        with self._lock:
            return [w for watches in self._watches.values() for w in watches]

    def _ensure_loops(self) -> None:
        # Started lazily and again after a fork: a prefork child inherits the dict but not the threads.
        if self._pid != os.getpid() or not all(loop.is_alive() for loop in self._loops):
            self._pid = os.getpid()
            self._loops = [threading.Thread(target=self._fast, name="inflight-fast", daemon=True),
                           threading.Thread(target=self._slow, name="inflight-slow", daemon=True)]
            for loop in self._loops:
                loop.start()

    def _fast(self) -> None:
        client = events.shared_client()
        while True:
            time.sleep(CANCEL_POLL_SECONDS)
            watches = self.watched()
            if not watches:
                continue
            for w in watches:
                if w.on_tick is not None:
                    try:
                        w.on_tick()
                    except Exception:  # one step's trouble must not stop the loop that watches them all
                        log.warning("in-flight tick failed", exc_info=True)
            try:
                self._poll_cancels(client, watches)
            except Exception:  # Redis away: a cancel is noticed once it is back (the run is discarded then)
                log.warning("cancel poll failed", exc_info=True)

    def _slow(self) -> None:
        client = events.shared_client()
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            watches = self.watched()
            if not watches:
                continue
            try:
                pipe = client.pipeline(transaction=False)
                for w in watches:
                    pipe.expire(lease_key(w.run_id, w.seq), LEASE_SECONDS)
                pipe.execute()
            except Exception:  # Redis away: leases lapse, and a step redone meanwhile is discarded by its CAS
                log.warning("lease renewal failed", exc_info=True)
            try:
                mark_superseded(watches, beat(sorted({w.run_id for w in watches}), time.time()))
            except Exception:  # a missed beat only risks a nudge from the sweep, which the lease makes harmless
                log.warning("heartbeat failed", exc_info=True)

    def _poll_cancels(self, client: "redis.Redis[bytes]", watches: list[Watch]) -> None:
        ids = sorted({w.run_id for w in watches})
        pipe = client.pipeline(transaction=False)
        for run_id in ids:
            pipe.exists(events.cancel_key(run_id))
        cancelled = {run_id for run_id, flag in zip(ids, pipe.execute(), strict=True) if flag}
        for w in watches:
            if w.run_id in cancelled:
                w.cancelled = True


def mark_superseded(asked: list[Watch], current: dict[str, int]) -> None:
    """Flag the steps whose run is at another step_seq now, or gone (pure). Only the steps the heartbeat asked
    about are judged: every one of them was watched, so its step_seq committed, before the question was asked.
    A step that began watching meanwhile is not in `current` and must not be taken for gone — it waits for the
    next round (judging by start time instead misses steps that began just before the snapshot: their lease
    request yields to this loop before they are registered)."""
    for w in asked:
        if current.get(w.run_id, -1) != w.seq:
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
