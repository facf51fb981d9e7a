"""The event types an endpoint can subscribe to, named as the run stream names them."""

RUN_STATUSES = ("requires_action", "completed", "incomplete", "failed", "cancelled", "expired")
RUN_EVENTS = tuple(f"thread.run.{s}" for s in RUN_STATUSES)
FILE_EVENTS = ("vector_store.file.completed", "vector_store.file.failed")
# `.failed`: a batch whose every file failed (its status says "failed"), so that a subscriber still hears of it.
BATCH_EVENTS = ("vector_store.file_batch.completed", "vector_store.file_batch.failed")
ALL = (*RUN_EVENTS, *FILE_EVENTS, *BATCH_EVENTS)

_RUN_EVENT_OF = {s: f"thread.run.{s}" for s in RUN_STATUSES}


def for_run_status(status: str) -> str | None:
    """The event a run reaching `status` announces, if any (queued, in_progress, cancelling announce none)."""
    return _RUN_EVENT_OF.get(status)
