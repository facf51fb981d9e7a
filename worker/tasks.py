"""Celery tasks: the run engine's step, and the beat's sweep that expires overdue runs and re-enqueues runs
whose step was lost (e.g. the API died between its commit and its enqueue, or a whole worker node vanished)."""

import time
from functools import lru_cache

from celery import Task
from celery.signals import worker_ready
from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from shared.config import get_settings
from shared.db import sync_engine
from shared.ids import now
from shared.models import Run, VectorStoreFile
from worker import code_tool, server_tools
from worker.celery_app import app
from worker.engine import Engine
from worker.ingest_tasks import ingest_file  # the ingest queue's task (the sweep nudges it)
from worker.queues import Queue


@lru_cache
def engine() -> Engine:
    return Engine()


@app.task(name="assistants.runs.advance", queue=Queue.RUNS.value, acks_late=True, reject_on_worker_lost=True,
          soft_time_limit=840, time_limit=900)
def advance(run_id: str, step_seq: int) -> None:
    """Take run `run_id` one step further, if it is still at `step_seq` (otherwise this task is stale)."""
    engine().advance(run_id, step_seq)


CAPACITY_RETRY_SECONDS = 2.0


@app.task(name="assistants.code.execute", queue=Queue.CODE.value, acks_late=True, reject_on_worker_lost=True,
          soft_time_limit=840, time_limit=900, bind=True, max_retries=None)
def execute_code(self: Task, run_id: str, step_seq: int) -> None:
    """Run the code_interpreter calls of run `run_id`'s open tool step (if the run is still at `step_seq`).
    When every sandbox session is taken, wait for one in the queue (retrying) up to SANDBOX_QUEUE_SECONDS."""
    waited = self.request.retries * CAPACITY_RETRY_SECONDS
    may_wait = waited < get_settings().sandbox_queue_seconds
    if not server_tools.execute(engine(), run_id, step_seq, may_wait=may_wait):
        raise self.retry(countdown=CAPACITY_RETRY_SECONDS)


@app.task(name="assistants.search.execute", queue=Queue.RUNS.value, acks_late=True, reject_on_worker_lost=True,
          soft_time_limit=840, time_limit=900)
def execute_search(run_id: str, step_seq: int) -> None:
    """Run the file_search calls of run `run_id`'s open tool step (if the run is still at `step_seq`)."""
    server_tools.execute(engine(), run_id, step_seq)


@worker_ready.connect
def _reap_at_start(**_: object) -> None:
    """A worker starting (perhaps after one was killed mid-call) has the sandboxes checked at once, not at the
    beat's next minute."""
    maintain_sandboxes.delay()


@app.task(name="assistants.sandbox.maintain", queue=Queue.CODE.value, acks_late=False)
def maintain_sandboxes() -> dict[str, object]:
    """End expired or dead code_interpreter sessions and keep the warm pool filled."""
    return code_tool.maintain()


@app.task(name="assistants.sandbox.end_session", queue=Queue.CODE.value, acks_late=True)
def end_session(thread_id: str) -> None:
    """The thread was deleted: destroy its session and free its slot."""
    code_tool.end_session(thread_id)


@app.task(name="assistants.runs.sweep", queue=Queue.RUNS.value, acks_late=False)
def sweep() -> int:
    """Find runs that need a nudge and enqueue their next step; the step's compare-and-set makes a spurious
    nudge harmless."""
    t = time.time()
    settings = get_settings()
    # A queued or cancelling run nobody has touched for this long lost its task; an in-progress run whose
    # worker has not heartbeated (every 5 s) for this long lost its worker.
    waiting, running = settings.run_stale_waiting_seconds, settings.run_stale_running_seconds
    with Session(sync_engine()) as s:
        due = s.exec(select(Run.id, Run.step_seq).where(
            or_(
                (col(Run.status).in_(("queued", "in_progress", "requires_action"))) & (col(Run.expires_at) <= now()),
                (col(Run.status).in_(("queued", "cancelling")))
                & (col(Run.heartbeat_at).is_(None) | (col(Run.heartbeat_at) < t - waiting))
                & (col(Run.created_at) < int(t - waiting)),
                (col(Run.status) == "in_progress") & (col(Run.heartbeat_at) < t - running),
            )).limit(1000)).all()
        if due:
            # Stamp the nudge, so a run waiting in a long queue is nudged once per window, not every sweep.
            s.exec(update(Run).where(col(Run.id).in_([r for r, _ in due])).values(heartbeat_at=t))
            s.commit()
    for run_id, seq in due:
        advance.apply_async(args=[run_id, seq])
    return len(due) + _nudge_ingestion(t)


def _nudge_ingestion(t: float) -> int:
    """Files still in progress long after they were added may have lost their task (e.g. the API died between
    its commit and its enqueue): enqueue them again, once per INGEST_STALE_SECONDS each. Harmless if the task
    was not lost: a running ingestion holds the file's lock (the nudge returns `busy`), a finished one is stale."""
    stale = get_settings().ingest_stale_seconds
    with Session(sync_engine()) as s:
        rows = s.exec(select(VectorStoreFile.vector_store_id, VectorStoreFile.file_id, VectorStoreFile.attempt)
                      .where(VectorStoreFile.status == "in_progress",
                             VectorStoreFile.created_at < int(t - stale)).limit(1000)).all()
    redis = engine().redis
    nudged = 0
    for vs_id, file_id, attempt in rows:
        if redis.set(f"ingest:nudged:{vs_id}:{file_id}:{attempt}", "1", nx=True, ex=max(1, int(stale))):
            ingest_file.apply_async(args=[vs_id, file_id, attempt])
            nudged += 1
    return nudged
