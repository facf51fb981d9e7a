"""The outbox: an event and its deliveries are rows written in the same transaction as the change they report, so
an event exists if and only if the change committed — whatever dies afterwards (a worker, Redis), the delivery
workers find the rows (the beat's sweep looks for due ones every WEBHOOK_SWEEP_SECONDS).

A delivery is nudged at once, too: the recording transaction takes a transaction-scoped advisory lock on the
event and sends the delivery task before it commits; the task waits on that lock before it reads, so it sees the
rows exactly when the commit lands (and nothing if the transaction rolls back). The callers need no post-commit
hook, and a lost nudge only delays a delivery until the sweep.

Fan-out happens here: one delivery per enabled endpoint of the project subscribed to the type. A project with no
endpoints costs one indexed query per event and writes nothing.
"""

import json
import logging
import time
from typing import Any

from sqlalchemy import Connection, text

from shared import wire
from shared.driver_sql import prepare
from shared.ids import new_id, now
from shared.models import VectorStoreFile, VectorStoreFileBatch
from shared.rows import from_row

log = logging.getLogger("webhooks.outbox")

_RECORD = prepare(text("""
    WITH targets AS (
        SELECT id FROM webhook_endpoint
        WHERE project_id = :project_id AND status = 'enabled' AND (events IS NULL OR events ? :type)
    ), event AS (
        INSERT INTO webhook_event (id, project_id, type, created_at, payload)
        SELECT :event_id, :project_id, :type, :created_at, :payload WHERE EXISTS (SELECT 1 FROM targets)
        RETURNING id
    )
    INSERT INTO webhook_delivery (id, project_id, endpoint_id, event_id, created_at, status, attempts,
                                  next_attempt_at, task_due_at)
    SELECT 'whd_' || substr(md5(event.id || ':' || targets.id), 1, 24), :project_id, targets.id, event.id,
           :created_at, 'pending', 0, :at, :at
    FROM event, targets
    RETURNING id"""))
_LOCK = prepare(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"))


def lock_key(event_id: str) -> str:
    return f"webhook-event:{event_id}"


def payload(event_id: str, event_type: str, created_at: int, data: dict[str, Any]) -> str:
    """The body every delivery of the event sends: `{"object": "event", "id", "type", "created_at", "data"}`."""
    return json.dumps({"object": "event", "id": event_id, "type": event_type, "created_at": created_at,
                       "data": data}, separators=(",", ":"), ensure_ascii=False)


def record(conn: Connection, *, project_id: str, event_type: str, data: dict[str, Any]) -> None:
    """Write the event and its deliveries in the caller's transaction (which must commit for them to count)."""
    event_id, created = new_id("event"), now()
    ids = [r[0] for r in _RECORD.execute(conn, {
        "project_id": project_id, "type": event_type, "event_id": event_id, "created_at": created,
        "payload": payload(event_id, event_type, created, data), "at": time.time()}).fetchall()]
    if not ids:
        return
    _LOCK.execute(conn, {"k": lock_key(event_id)})
    _nudge(ids, event_id)


def _nudge(delivery_ids: list[str], event_id: str) -> None:
    try:
        # Late: shared.dispatch imports shared.runflow, which imports this module.
        from shared.dispatch import Task, send

        for delivery_id in delivery_ids:
            send(Task.WEBHOOK_DELIVER, delivery_id, event_id)
    except Exception:  # the broker is away: the rows stand, and the sweep sends them
        log.warning("webhook nudge for %s not sent; the sweep will deliver it", event_id, exc_info=True)


# ---- vector store files and batches ------------------------------------------------------------------------------
_FILE = text("""SELECT vsf.*, vs.project_id FROM vector_store_file vsf
                JOIN vector_store vs ON vs.id = vsf.vector_store_id
                WHERE vsf.vector_store_id = :vs AND vsf.file_id = :f""")
_BATCH_COUNTS = text("SELECT status, count(*) FROM vector_store_file WHERE batch_id = :b GROUP BY status")


def vector_store_file_finished(conn: Connection, vector_store_id: str, file_id: str) -> None:
    """A file has just been written `completed` or `failed` (in `conn`'s open transaction): report it, and its
    batch if it was the batch's last file in progress."""
    row = conn.execute(_FILE, {"vs": vector_store_id, "f": file_id}).first()
    if row is None or row.status not in ("completed", "failed"):
        return
    f = from_row(VectorStoreFile, row)
    record(conn, project_id=row.project_id, event_type=f"vector_store.file.{f.status}",
           data=wire.vector_store_file(f))
    if f.batch_id is None:
        return
    # Files of a batch finish in parallel transactions: serialised here (not by a lock on the batch row, which the
    # API's cancel takes before the files'), the last one to finish sees every other file's final status.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"webhook-batch:{f.batch_id}"})
    batch = conn.execute(text("SELECT * FROM vector_store_file_batch WHERE id = :b"), {"b": f.batch_id}).first()
    if batch is None or batch.cancelled:
        return
    counts = wire.file_counts(dict(conn.execute(_BATCH_COUNTS, {"b": f.batch_id}).tuples().all()))
    if counts["in_progress"]:
        return
    rendered = wire.vector_store_file_batch(from_row(VectorStoreFileBatch, batch), counts)
    if rendered["status"] in ("completed", "failed"):
        record(conn, project_id=row.project_id, event_type=f"vector_store.file_batch.{rendered['status']}",
               data=rendered)
