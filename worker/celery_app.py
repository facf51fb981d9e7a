"""The Celery application shared by every worker and by the API (which only enqueues)."""

from celery import Celery
from kombu.entity import Queue as KombuQueue

from shared.config import get_settings
from worker import (
    broker,
    observability,  # noqa: F401  (logging, metrics: before anything imports prometheus_client)
)
from worker.queues import Queue
from worker.task_events import BufferedTaskEvents

settings = get_settings()

app = Celery("assistants", broker=settings.redis_url, backend=None, include=["worker.tasks", "worker.webhook_tasks"])
broker.install()  # acks from hundreds of greenlets wait for a connection rather than fail
app.steps["consumer"].add(BufferedTaskEvents)  # a gevent worker's task events in batches, as prefork sends them
app.conf.update(
    task_queues=[KombuQueue(q.value) for q in Queue],  # type: ignore[no-untyped-call]
    task_default_queue=Queue.RUNS.value,
    # Tasks are idempotent steps, acknowledged only once done. What that buys depends on the pool:
    # - prefork (code, ingest, webhooks): a child process that dies mid-task has its task requeued at once by the
    #   parent (reject_on_worker_lost);
    # - gevent (runs: one process, no children): nothing — a killed process takes its steps with it, and the
    #   beat's sweep enqueues their runs again once they stop heartbeating (RUN_STALE_RUNNING_SECONDS).
    # A whole worker dying, of either kind, leaves its unacknowledged tasks to Redis's redelivery after the
    # visibility timeout below; by then the sweeps (runs, ingestion, webhook leases) have redone them, and the
    # redelivered copies are found stale.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # A worker reserves up to this times its concurrency: a prefork worker one task per child, the gevent runs
    # worker up to 1,000 (-c) — so the runs queue's length stays near 0 until its workers are full.
    worker_prefetch_multiplier=1,
    # Redis redelivers unacked tasks after this: it must exceed the longest task (a run step ends by its run's
    # expiry, its hard limit is 900 s; an ingest task's is 3500 s), or a task still running would be run twice.
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    accept_content=["json"],
    # Flower follows workers through their task events (workers run with -E); "sent" events would add a
    # Redis publish to every API request that enqueues, for nothing Flower needs.
    worker_send_task_events=True,
    task_send_sent_event=False,
    beat_schedule={
        "sweep-runs": {"task": "assistants.runs.sweep", "schedule": settings.run_sweep_seconds},
        "maintain-sandboxes": {"task": "assistants.sandbox.maintain", "schedule": 60.0},
        "sweep-webhooks": {"task": "assistants.webhooks.sweep", "schedule": settings.webhook_sweep_seconds},
    },
)
