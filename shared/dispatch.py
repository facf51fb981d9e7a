"""Handing work to workers and telling streaming clients what happened — always after the database commit, so a
worker never sees a run that is not there yet, and an event never announces a change that rolled back.

Tasks are sent by name, so the API and every worker enqueue without importing each other's modules (and the
engine, its tool steps and the task definitions stay free of import cycles).
"""

import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import anyio
import redis

from shared import events, metrics
from shared.runflow import Applied, all_announcements
from worker.queues import Queue

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from celery import Celery


log = logging.getLogger("dispatch")


class Task(StrEnum):
    ADVANCE = "assistants.runs.advance"  # (run_id, step_seq): the run's next step
    CODE = "assistants.code.execute"  # (run_id, step_seq): the open tool step, when it has code to run
    SEARCH = "assistants.search.execute"  # (run_id, step_seq): the open tool step, searches only
    INGEST = "assistants.ingest.file"  # (vector_store_id, file_id, attempt)
    END_SESSION = "assistants.sandbox.end_session"  # (thread_id)
    WEBHOOK_DELIVER = "assistants.webhooks.deliver"  # (delivery_id, event_id or None)


QUEUE = {Task.ADVANCE: Queue.RUNS, Task.CODE: Queue.CODE, Task.SEARCH: Queue.RUNS, Task.INGEST: Queue.INGEST,
         Task.END_SESSION: Queue.CODE, Task.WEBHOOK_DELIVER: Queue.WEBHOOKS}


def _celery() -> "Celery":
    from worker.celery_app import app  # late: the app's module configures worker logging and metrics

    return app


def send(task: Task, *args: Any, countdown: float | None = None) -> None:
    _celery().send_task(task.value, args=list(args), queue=QUEUE[task].value, countdown=countdown)


def step_task(run_id: str, step_seq: int, task: Task = Task.ADVANCE, countdown: float | None = None) -> None:
    """Ask a worker to take the run's step `step_seq` (the task carries it: its compare-and-set token)."""
    send(task, run_id, step_seq, countdown=countdown)


def _finish(applied: Applied | None, task: Task) -> None:
    if applied is None:
        return
    if applied.finished:
        metrics.RUNS_FINISHED.labels(applied.status.value).inc()
    if applied.enqueue:
        step_task(applied.run.id, applied.run.step_seq, task)


def after_commit(r: "redis.Redis[bytes]", run_id: str, applied: Applied | None,
                 before: Sequence[tuple[str, Any]] = (), task: Task = Task.ADVANCE) -> None:
    """A worker's committed step: its events and the run's new status to streaming clients, then the next task.

    The step is committed whatever happens here: events that cannot be written (Redis away) are given up —
    a stream left silent learns the run's state from the database (api/sse.py) — and the next task is sent all
    the same (if it cannot be, the beat's sweep sends it)."""
    items = all_announcements(before, applied)
    try:
        if items:
            events.publish(r, run_id, items)
    except redis.RedisError:
        log.warning("run %s: %d events not published (Redis unavailable)", run_id, len(items), exc_info=True)
    finally:
        # A cancel's key is left to expire rather than deleted here: the worker still streaming the run's answer
        # polls it to hang up on the model, and the task confirming the cancel usually finishes first.
        _finish(applied, task)


async def after_commit_async(r: "aioredis.Redis[bytes]", run_id: str, applied: Applied | None,
                             before: Sequence[tuple[str, Any]] = ()) -> str | None:
    """The API's committed change; returns the id of the first event published (a new stream starts there).
    The task is sent from a thread: publishing to the broker blocks (for seconds, retrying, if Redis is away),
    which must not stall the event loop that serves every other request and stream of the process."""
    items = all_announcements(before, applied)
    first = await events.apublish(r, run_id, items) if items else None
    await anyio.to_thread.run_sync(_finish, applied, Task.ADVANCE)
    return first
