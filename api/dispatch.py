"""Handing runs to workers and telling streaming clients what happened — always after the database commit,
so a worker never sees a run that is not there yet, and an event never announces a change that rolled back."""

from typing import Any

from celery import Celery

from shared import events
from shared.models import Run
from worker.queues import Queue

ADVANCE_TASK = "assistants.runs.advance"
END_SESSION_TASK = "assistants.sandbox.end_session"
INGEST_TASK = "assistants.ingest.file"

_celery: Celery | None = None


def _app() -> Celery:
    global _celery
    if _celery is None:
        from worker.celery_app import app

        _celery = app
    return _celery


def enqueue_advance(run: Run) -> None:
    """Ask a worker to take the run's next step; the task carries step_seq, its compare-and-set token."""
    _app().send_task(ADVANCE_TASK, args=[run.id, run.step_seq], queue=Queue.RUNS.value)


def enqueue_ingest(vector_store_id: str, file_id: str, attempt: int) -> None:
    """Index a vector store file (the task carries its attempt: a re-added file makes older tasks stale)."""
    _app().send_task(INGEST_TASK, args=[vector_store_id, file_id, attempt], queue=Queue.INGEST.value)


def end_sandbox_session(thread_id: str) -> None:
    """A deleted thread's code_interpreter session (its variables and files) goes too, now rather than when the
    reaper finds it idle."""
    _app().send_task(END_SESSION_TASK, args=[thread_id], queue=Queue.CODE.value)


_redis = None


def redis_client() -> Any:
    global _redis
    if _redis is None:
        _redis = events.async_client()
    return _redis


async def publish(run_id: str, items: list[tuple[str, Any]]) -> str:
    return await events.apublish(redis_client(), run_id, items)
