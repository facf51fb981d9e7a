"""Celery tasks of the `webhooks` queue: one delivery attempt, and the beat's sweep for due deliveries."""

from shared.dispatch import Task
from worker import webhook_delivery
from worker.celery_app import app
from worker.queues import Queue


# The attempt's own bookkeeping (a lease and a token in Postgres) makes a redelivered task harmless, so it is
# acknowledged late like every task here. The POST itself ends within WEBHOOK_TIMEOUT_SECONDS, inside its lease
# (worker/webhook_delivery.py); the time limits are a backstop for the rest: up to 30 s waiting for the producing
# transaction to commit, and the database.
@app.task(name=Task.WEBHOOK_DELIVER.value, queue=Queue.WEBHOOKS.value, acks_late=True,
          reject_on_worker_lost=True, soft_time_limit=120, time_limit=150)
def deliver(delivery_id: str, wait_for_event: str | None = None) -> str:
    """Attempt delivery `delivery_id` once, if it is due and no other attempt holds it."""
    return webhook_delivery.attempt(delivery_id, wait_for_event)


@app.task(name="assistants.webhooks.sweep", queue=Queue.WEBHOOKS.value, acks_late=False)
def sweep() -> int:
    """Send due deliveries nobody is working on (retries, lost nudges, attempts whose worker died)."""
    return webhook_delivery.sweep()
