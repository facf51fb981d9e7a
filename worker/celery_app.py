"""The Celery application shared by every worker and by the API (which only enqueues)."""

from celery import Celery
from kombu.entity import Queue as KombuQueue

from shared.config import get_settings
from worker import observability  # noqa: F401  (logging, metrics: before anything imports prometheus_client)
from worker.queues import Queue

settings = get_settings()

app = Celery("assistants", broker=settings.redis_url, backend=None, include=["worker.tasks", "worker.webhook_tasks"])
app.conf.update(
    task_queues=[KombuQueue(q.value) for q in Queue],  # type: ignore[no-untyped-call]
    task_default_queue=Queue.RUNS.value,
    # Tasks are idempotent steps: ack only once done, and redeliver if the worker dies mid-task.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Redis redelivers unacked tasks after this; it must exceed the longest step (model call or sandbox run).
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
