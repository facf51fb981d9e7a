"""The one executor of the run state machine's decisions (shared/runstate.py), for the API and the workers.

`apply` is a compare-and-set: its UPDATE matches only while the run is still at the `step_seq` it was read at,
so a redelivered, raced or overtaken step writes nothing and learns so (None). It runs inside the caller's
transaction together with the effects that belong there (open steps closed when the run ends); what must wait
for the commit — telling streaming clients, handing the run to a worker — is described by the `Applied` it
returns, for shared/dispatch.py to carry out.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import events, wire
from shared.driver_sql import Prepared, names, prepare
from shared.ids import now
from shared.models import Run, RunStep
from shared.rows import column_values, from_values
from shared.rows import table as _table
from shared.runstate import TERMINAL, Effect, Event, Plan, Status, closed_step_values, plan
from shared.webhooks import events as webhook_events
from shared.webhooks import outbox


@dataclass(frozen=True)
class Applied:
    """A transition that took effect: the run as it now is, and what it asks of the post-commit dispatch."""

    run: Run
    plan: Plan

    @property
    def status(self) -> Status:
        return self.plan.decision.status

    @property
    def enqueue(self) -> bool:
        return Effect.ENQUEUE in self.plan.decision.effects

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def announcements(self) -> list[tuple[str, Any]]:
        """`thread.run.<status>` when the status changed, and the end-of-stream marker after a closing one."""
        if not self.plan.announces:
            return []
        name = f"thread.run.{self.status.value}"
        out: list[tuple[str, Any]] = [(name, wire.run(self.run))]
        if name in events.CLOSING:
            out.append((events.DONE, "[DONE]"))
        return out


@lru_cache
def _compare_and_set(columns: tuple[str, ...]) -> Prepared:
    """UPDATE the run's `columns` if it is still at the step it was read at, returning the whole row."""
    t = _table(Run)
    return prepare(update(t).where(t.c.id == bindparam("where_id"), t.c.step_seq == bindparam("where_seq"))
                   .returning(*t.c), column_keys=columns)


@lru_cache
def _close_steps(columns: tuple[str, ...]) -> Prepared:
    """UPDATE the run's open steps (the run has ended)."""
    s = _table(RunStep)
    return prepare(update(s).where(s.c.run_id == bindparam("where_run"), s.c.status == "in_progress"),
                   column_keys=columns)


def _plan(run: Run, event: Event, given: dict[str, Any], at: int) -> Plan:
    return plan(run.status, run.step_seq, run.started_at, event, at=at, heartbeat=time.time(), **given)


def _statements(run: Run, event: Event, given: dict[str, Any]) -> tuple[Plan, list[tuple[Prepared, dict[str, Any]]]]:
    """The plan, and its statements: the compare-and-set first, then what goes with it."""
    at = now()
    p = _plan(run, event, given, at)
    values = column_values(Run, p.values)
    out = [(_compare_and_set(tuple(values)), {**values, "where_id": run.id, "where_seq": p.expected_seq})]
    closing = closed_step_values(p.decision, at)
    if closing is not None:
        out.append((_close_steps(tuple(closing)), {**closing, "where_run": run.id}))
    return p, out


def apply(conn: Connection, run: Run, event: Event, **given: Any) -> Applied | None:
    """Apply `event` to `run` (as read) in the caller's transaction; None if the run moved on meanwhile."""
    p, ((cas, params), *alongside) = _statements(run, event, given)
    cur = cas.execute(conn, params)
    row = cur.fetchone()
    if row is None:
        return None
    for stmt, values in alongside:
        stmt.execute(conn, values)
    applied = Applied(from_values(Run, names(cur), row), p)
    # Webhook subscribers hear of the change from the same transaction (an outbox: nothing announced rolls back,
    # nothing committed goes unannounced). Only workers reach the statuses webhooks report.
    if (kind := webhook_events.for_run_status(applied.status.value)) is not None:
        outbox.record(conn, project_id=applied.run.project_id, event_type=kind, data=wire.run(applied.run))
    return applied


async def apply_async(conn: AsyncConnection, run: Run, event: Event, **given: Any) -> Applied | None:
    """`apply` for the API's async connections."""
    p, ((cas, params), *alongside) = _statements(run, event, given)
    cur = await cas.execute_async(conn, params)
    row = await cur.fetchone()
    if row is None:
        return None
    for stmt, values in alongside:
        await stmt.execute_async(conn, values)
    return Applied(from_values(Run, names(cur), row), p)


def all_announcements(before: Sequence[tuple[str, Any]], applied: Applied | None) -> list[tuple[str, Any]]:
    """What a committed step tells streaming clients, in order: its own events, then the run's new status."""
    return [*before, *(applied.announcements() if applied is not None else [])]
