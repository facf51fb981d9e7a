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
from typing import Any

from sqlalchemy import Connection, Executable, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import events, wire
from shared.ids import now
from shared.models import Run, RunStep
from shared.rows import column_values, from_row
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


def _statements(run: Run, p: Plan, at: int) -> tuple[Executable, list[Executable]]:
    """The compare-and-set UPDATE (returning the whole row) and the statements that go with it."""
    t = _table(Run)
    cas = (update(t).where(t.c.id == run.id, t.c.step_seq == p.expected_seq)
           .values(**column_values(Run, p.values)).returning(*t.c))
    alongside: list[Executable] = []
    closing = closed_step_values(p.decision, at)
    if closing is not None:
        s = _table(RunStep)
        alongside.append(update(s).where(s.c.run_id == run.id, s.c.status == "in_progress").values(**closing))
    return cas, alongside


def _plan(run: Run, event: Event, given: dict[str, Any], at: int) -> Plan:
    return plan(run.status, run.step_seq, run.started_at, event, at=at, heartbeat=time.time(), **given)


def apply(conn: Connection, run: Run, event: Event, **given: Any) -> Applied | None:
    """Apply `event` to `run` (as read) in the caller's transaction; None if the run moved on meanwhile."""
    at = now()
    p = _plan(run, event, given, at)
    cas, alongside = _statements(run, p, at)
    row = conn.execute(cas).first()
    if row is None:
        return None
    for stmt in alongside:
        conn.execute(stmt)
    applied = Applied(from_row(Run, row), p)
    # Webhook subscribers hear of the change from the same transaction (an outbox: nothing announced rolls back,
    # nothing committed goes unannounced). Only workers reach the statuses webhooks report.
    if (kind := webhook_events.for_run_status(applied.status.value)) is not None:
        outbox.record(conn, project_id=applied.run.project_id, event_type=kind, data=wire.run(applied.run))
    return applied


async def apply_async(conn: AsyncConnection, run: Run, event: Event, **given: Any) -> Applied | None:
    """`apply` for the API's async connections."""
    at = now()
    p = _plan(run, event, given, at)
    cas, alongside = _statements(run, p, at)
    row = (await conn.execute(cas)).first()
    if row is None:
        return None
    for stmt in alongside:
        await conn.execute(stmt)
    return Applied(from_row(Run, row), p)


def all_announcements(before: Sequence[tuple[str, Any]], applied: Applied | None) -> list[tuple[str, Any]]:
    """What a committed step tells streaming clients, in order: its own events, then the run's new status."""
    return [*before, *(applied.announcements() if applied is not None else [])]
