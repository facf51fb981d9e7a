"""The ingest queue's task: one step of a vector store file's ingestion (worker/ingest.py), which enqueues the
next step itself when the file is not done, behind whatever was queued meanwhile."""

from celery import Task

from shared.dispatch import Task as Named
from worker import ingest
from worker.celery_app import app
from worker.queues import Queue


@app.task(name=Named.INGEST.value, queue=Queue.INGEST.value, acks_late=True, reject_on_worker_lost=True,
          bind=True, max_retries=3, soft_time_limit=3300, time_limit=3500)
def ingest_file(self: Task, vector_store_id: str, file_id: str, attempt: int, step: int | None = None) -> str:
    """Read, chunk, embed and index one vector store file, a slice at a time (stale attempts and steps are
    no-ops). The API enqueues it without a step; continuations carry theirs."""
    try:
        outcome = ingest.ingest(vector_store_id, file_id, attempt, step=step, last_try=self.request.retries >= 3)
    except Exception as e:
        raise self.retry(exc=e, countdown=5) from e
    if outcome.next_step is not None:
        # After the step is recorded (a crash in between leaves the file to the beat's nudge, which enqueues the
        # recorded step again).
        ingest_file.apply_async(args=[vector_store_id, file_id, attempt], kwargs={"step": outcome.next_step},
                                countdown=outcome.delay or None)
    return outcome.status
