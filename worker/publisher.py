"""Streamed events of every run a worker process is answering, written to Redis in shared round trips.

A gevent runs worker streams hundreds of answers at once; each delta written on its own cost a round trip (a
pooled connection, a send, a wait for the reply, a switch back) — most of the worker's time per token at
real-model speed. Here one loop per process takes whatever deltas are waiting, of all runs, and writes them in one
pipeline; deltas arriving while it writes wait for the next. Nothing is held back on purpose: with one run in
flight every delta goes out at once, as before.

Order per run is kept (one queue, written in order). A step that is about to commit — and so to announce its
end directly — first waits until its deltas are written (`written`). A failed write is reported to the runs whose
deltas it held (`error`), which stop and are retried like any step meeting a Redis blip.
"""

import logging
import os
import threading
from collections import deque
from typing import Any

from shared import events

log = logging.getLogger("worker.publisher")

WAIT_SECONDS = 30.0  # a step waits this long at most for its deltas to be written


class Publisher:
    def __init__(self) -> None:
        self._queue: deque[tuple[int, str, list[tuple[str, Any]], bool]] = deque()
        self._cv = threading.Condition()
        self._sent = 0  # sequence number of the last delta handed in
        self._written = 0  # ... and of the last one written (or failed)
        self._errors: dict[str, BaseException] = {}
        self._pid = 0
        self._loop: threading.Thread | None = None

    def send(self, run_id: str, items: list[tuple[str, Any]], refresh_ttl: bool) -> None:
        """Queue events of `run_id` to be written in order; raises the error a previous write of them met."""
        with self._cv:
            failed = self._errors.pop(run_id, None)
            if failed is not None:
                raise failed
            self._sent += 1
            self._queue.append((self._sent, run_id, items, refresh_ttl))
            self._ensure_loop()
            self._cv.notify_all()

    def written(self, run_id: str) -> None:
        """Wait until everything queued so far is written; raises the error a write of `run_id`'s events met."""
        with self._cv:
            target = self._sent
            if not self._cv.wait_for(lambda: self._written >= target, timeout=WAIT_SECONDS):
                raise TimeoutError("streamed events were not written in time")
            failed = self._errors.pop(run_id, None)
        if failed is not None:
            raise failed

    def forget(self, run_id: str) -> None:
        with self._cv:
            self._errors.pop(run_id, None)

    def _ensure_loop(self) -> None:
        # Started lazily, and again after a fork (a prefork child inherits the object but not the thread).
        if self._pid != os.getpid() or self._loop is None or not self._loop.is_alive():
            self._pid = os.getpid()
            self._loop = threading.Thread(target=self._run, name="publisher", daemon=True)
            self._loop.start()

    def _run(self) -> None:
        r = events.shared_client()
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._queue))
                batch = list(self._queue)
                self._queue.clear()
            try:
                pipe = r.pipeline(transaction=False)
                for _, run_id, items, refresh_ttl in batch:
                    events.queue_in(pipe, run_id, items, refresh_ttl=refresh_ttl)
                pipe.execute()
                failed: BaseException | None = None
            except Exception as exc:  # Redis away: the steps whose events these were stop and are retried
                log.warning("writing %d streamed events failed", len(batch), exc_info=True)
                failed = exc
            with self._cv:
                if failed is not None:
                    for _, run_id, _, _ in batch:
                        self._errors[run_id] = failed
                self._written = batch[-1][0]
                self._cv.notify_all()


PUBLISHER = Publisher()
