"""Task events (what Flower shows of tasks) published in batches by a worker without an event loop (gevent).

A prefork worker buffers its task events and publishes them together, every so often, as one message. Celery
leaves gevent out of that ("XXX This excludes eventlet/gevent, which should actually buffer",
celery/worker/consumer/events.py), so a gevent runs worker published each of a task's three events (received,
started, succeeded) as a message of its own: ~6% of its CPU, and as many messages for Redis and for Flower to
take. This consumer step turns the same buffering on, flushed every FLUSH_SECONDS or at BUFFER_LIMIT events;
Flower reads the batches as it reads a prefork worker's. Worker events (heartbeats, online/offline) still go out
one by one.
"""

import logging
import threading
import time
from typing import Any

from celery import bootsteps

log = logging.getLogger("worker.task_events")

FLUSH_SECONDS = 0.5
BUFFER_LIMIT = 100


class BufferedTaskEvents(bootsteps.StartStopStep):
    """Runs after Celery's own Events step, each time the consumer (re)connects and makes a new dispatcher."""

    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self._flusher: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        if c.hub is not None or dispatcher is None or not dispatcher.enabled:
            return  # an event loop buffers already; or no events are sent
        dispatcher.buffer_group = frozenset({"task"})
        dispatcher.buffer_limit = BUFFER_LIMIT
        self._stopped.clear()
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_every, args=(c,), name="task-events", daemon=True)
            self._flusher.start()

    def _flush_every(self, c: Any) -> None:
        while not self._stopped.wait(FLUSH_SECONDS):
            self._flush(c)

    def _flush(self, c: Any) -> None:
        dispatcher = c.event_dispatcher  # the consumer's current one (a reconnect replaces it)
        if dispatcher is None:
            return
        try:
            # A batch that cannot be published (Redis away) is kept by the dispatcher and sent with a later flush.
            dispatcher.flush()
        except Exception:  # not expected (the dispatcher keeps what fails); the flusher must go on regardless
            log.warning("publishing task events failed", exc_info=True)
            time.sleep(FLUSH_SECONDS)

    def stop(self, c: Any) -> None:
        self._flush(c)

    def shutdown(self, c: Any) -> None:
        self._stopped.set()
        self._flush(c)
