"""Celery tasks: the run engine's step, the tool steps, ingestion, sandbox upkeep, and the beat's sweep that
expires overdue runs and re-enqueues runs whose step was lost (e.g. the API died between its commit and its
enqueue, or a whole worker process vanished with hundreds of steps in flight).

Run steps are safe to redo (each commits by compare-and-set), so crash recovery rests on the sweep and the
broker's redelivery, not on the pool: a gevent or thread pool does nothing for `reject_on_worker_lost` and
enforces no soft time limit.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Task
from celery.signals import worker_ready
from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from shared.config import get_settings
from shared.db import sync_engine
from shared.dispatch import Task as Named
from shared.events import shared_client
from shared.ids import now
from shared.models import Run, VectorStoreFile
from worker import code_tool, engine, failures, server_tools
from worker.celery_app import app
from worker.ingest_tasks import ingest_file  # the ingest queue's task (the sweep nudges it)
from worker.queues import Queue

log = logging.getLogger("worker.tasks")

# A step's hard limit: past the run's lifetime (600 s), so a step only meets it when something hangs. Prefork
# kills the process, gevent raises in the greenlet; either way the step is redone or the run expires.
STEP_TIME_LIMIT = 900
CAPACITY_RETRY_SECONDS = 2.0


def backoff(retries: int) -> float:
    """Seconds before retrying a step that met an infrastructure error: 1, 2, 4 … up to 30."""
    return float(min(2 ** retries, 30))


@contextmanager
def retried_on_blips(task: Task) -> Iterator[None]:
    """Redis or Postgres going away mid-step (a restart, a failover) retries the step later with the same token;
    it never fails the run. If even the retry cannot be sent, the sweep finds the run once they are back."""
    try:
        yield
    except failures.RETRYABLE as exc:
        log.warning("step interrupted by %s; retrying", exc.__class__.__name__)
        # The retry carries the run's token as it was when the error came: a step that had started the run
        # (queued -> in_progress) continues at the moved-on token rather than finding its own stale.
        seq = exc.seq if isinstance(exc, failures.Interrupted) else None
        args = [task.request.args[0], seq] if seq is not None else None
        raise task.retry(args=args, exc=exc, countdown=backoff(task.request.retries)) from exc


@app.task(name=Named.ADVANCE.value, queue=Queue.RUNS.value, acks_late=True, reject_on_worker_lost=True,
          bind=True, max_retries=None, time_limit=STEP_TIME_LIMIT)
def advance(self: Task, run_id: str, step_seq: int) -> None:
    """Take run `run_id` one step further, if it is still at `step_seq` (otherwise this task is stale)."""
    with retried_on_blips(self):
        engine.advance(run_id, step_seq)


@app.task(name=Named.CODE.value, queue=Queue.CODE.value, acks_late=True, reject_on_worker_lost=True,
          soft_time_limit=STEP_TIME_LIMIT - 60, time_limit=STEP_TIME_LIMIT, bind=True, max_retries=None)
def execute_code(self: Task, run_id: str, step_seq: int) -> None:
    """Run the code_interpreter calls of run `run_id`'s open tool step (if the run is still at `step_seq`).
    When every sandbox session is taken, wait for one in the queue (retrying) up to SANDBOX_QUEUE_SECONDS."""
    waited = self.request.retries * CAPACITY_RETRY_SECONDS
    may_wait = waited < get_settings().sandbox_queue_seconds
    with retried_on_blips(self):
        done = server_tools.execute(run_id, step_seq, may_wait=may_wait)
    if not done:
        raise self.retry(countdown=CAPACITY_RETRY_SECONDS)


@app.task(name=Named.SEARCH.value, queue=Queue.RUNS.value, acks_late=True, reject_on_worker_lost=True,
          bind=True, max_retries=None, time_limit=STEP_TIME_LIMIT)
def execute_search(self: Task, run_id: str, step_seq: int) -> None:
    """Run the file_search calls of run `run_id`'s open tool step (if the run is still at `step_seq`)."""
    with retried_on_blips(self):
        server_tools.execute(run_id, step_seq)


@worker_ready.connect
def _reap_at_start(**_: object) -> None:
    """A worker starting (perhaps after one was killed mid-call) has the sandboxes checked at once, not at the
    beat's next minute."""
    maintain_sandboxes.delay()


@app.task(name="assistants.sandbox.maintain", queue=Queue.CODE.value, acks_late=False)
def maintain_sandboxes() -> dict[str, object]:
    """End expired or dead code_interpreter sessions and keep the warm pool filled."""
    return code_tool.maintain()


@app.task(name=Named.END_SESSION.value, queue=Queue.CODE.value, acks_late=True)
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
    # worker has not heartbeated (every few seconds, while the step is alive) for this long lost its worker.
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
    redis = shared_client()
    nudged = 0
    for vs_id, file_id, attempt in rows:
        if redis.set(f"ingest:nudged:{vs_id}:{file_id}:{attempt}", "1", nx=True, ex=max(1, int(stale))):
            ingest_file.apply_async(args=[vs_id, file_id, attempt])
            nudged += 1
    return nudged
