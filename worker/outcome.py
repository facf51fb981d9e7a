"""A step's outcome, decided first and then done.

Every step of a run ends the same way: a state machine event with the columns it sets, rows to write, events to
announce before the run's new status, and which task takes the run next. Deciding that is pure (worker/reply.py,
worker/server_tools.py's `decide`, unit-tested without a stack); doing it is `commit`: one short transaction
(the compare-and-set first, so a step that was overtaken writes nothing), then publish and enqueue.
"""

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import SQLModel

from shared import dispatch, runflow
from shared.dispatch import Task
from shared.driver_sql import Prepared, prepare
from shared.events import shared_client
from shared.models import Run, RunStep
from shared.rows import table as _table
from shared.runstate import Event
from worker import store


@dataclass
class Outcome:
    event: Event
    given: dict[str, Any] = field(default_factory=dict)  # columns the event sets (usage, last_error, …)
    inserts: list[SQLModel] = field(default_factory=list)
    step_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # run step id -> columns
    before: list[tuple[str, Any]] = field(default_factory=list)  # announced before the run's new status
    next_task: Task = Task.ADVANCE  # who takes the run next, when the event enqueues


@lru_cache
def _update_step(columns: tuple[str, ...]) -> Prepared:
    steps = _table(RunStep)
    return prepare(update(steps).where(steps.c.id == bindparam("where_id")), column_keys=columns)


def commit(run: Run, outcome: Outcome) -> runflow.Applied | None:
    """Do `outcome` if `run` is still at the step it was read at; None (nothing written) if it moved on."""
    with store.begin() as conn:
        applied = runflow.apply(conn, run, outcome.event, **outcome.given)
        if applied is None:
            conn.rollback()
            return None
        for row in outcome.inserts:
            store.add(conn, row)
        for step_id, values in outcome.step_updates.items():
            _update_step(tuple(values)).execute(conn, {**values, "where_id": step_id})
    dispatch.after_commit(shared_client(), run.id, applied, outcome.before, outcome.next_task)
    return applied
