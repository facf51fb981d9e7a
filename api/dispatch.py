"""The API's side of shared/dispatch.py: its Redis client, and telling workers and streaming clients — always
after the database commit, so a worker never sees a run that is not there yet, and an event never announces a
change that rolled back."""

import logging
from typing import Any

import anyio
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from shared import dispatch, events
from shared.dispatch import Task
from shared.runflow import Applied

log = logging.getLogger("api.dispatch")

# What publishing or enqueueing raises while Redis (stream store and broker) is away.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (RedisError, BrokerError)

_redis: Any = None


def redis_client() -> Any:
    """The process's async client for short commands (streams are read by api/relay.py on its own connection)."""
    global _redis
    if _redis is None:
        _redis = events.async_client()
    return _redis


async def publish(run_id: str, items: list[tuple[str, Any]]) -> str:
    """Append events to the run's stream; returns the first one's id (a client's stream starts there)."""
    return await events.apublish(redis_client(), run_id, items)


async def after_commit(run_id: str, applied: Applied | None, before: list[tuple[str, Any]] | None = None) -> str | None:
    return await dispatch.after_commit_async(redis_client(), run_id, applied, before or [])


# Tasks are sent from a thread: publishing to the broker blocks (for seconds, retrying, if Redis is away), which
# must not stall the event loop that serves every other request and stream of the process.

async def enqueue_advance(run_id: str, step_seq: int) -> None:
    await anyio.to_thread.run_sync(dispatch.step_task, run_id, step_seq)


def enqueue_ingest(vector_store_id: str, file_id: str, attempt: int) -> None:
    """Index a vector store file (the task carries its attempt: a re-added file makes older tasks stale). Called
    from the session's after-commit hook, which cannot wait: if Redis is away, the beat's nudge enqueues it."""
    try:
        dispatch.send(Task.INGEST, vector_store_id, file_id, attempt)
    except DEPENDENCY_ERRORS:
        log.warning("file %s of %s: ingestion not enqueued (Redis unavailable); the beat will", file_id,
                    vector_store_id)


async def end_sandbox_session(thread_id: str) -> None:
    """A deleted thread's code_interpreter session (its variables and files) goes too, now rather than when the
    reaper finds it idle (which it still does if Redis is away now)."""
    try:
        await anyio.to_thread.run_sync(dispatch.send, Task.END_SESSION, thread_id)
    except DEPENDENCY_ERRORS:
        log.warning("thread %s: its sandbox session is left to the reaper (Redis unavailable)", thread_id)
