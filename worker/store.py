"""The run engine's database access: SQLAlchemy Core statements on one connection per worker process.

The ORM session's bookkeeping (identity map, unit of work, autoflush) cost more than the statements
themselves on this hot path; Core keeps the column knowledge in shared/models.py and drops the rest.
"""

from typing import Any

from sqlalchemy import Connection, select, update
from sqlmodel import SQLModel

from shared.db import sync_engine
from shared.models import Message, Run, RunStep
from shared.rows import column_values, from_row, insert_stmt, to_row
from shared.rows import table as _table


def connect() -> Connection:
    return sync_engine().connect()


def load_run(conn: Connection, run_id: str, *, lock: bool = False) -> Run | None:
    stmt = select(_table(Run)).where(_table(Run).c.id == run_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    return from_row(Run, row) if row is not None else None


def cas_run(conn: Connection, run: Run, values: dict[str, Any]) -> bool:
    """UPDATE the run only if it is still at run.step_seq; True if it was."""
    t = _table(Run)
    done = conn.execute(update(t).where(t.c.id == run.id, t.c.step_seq == run.step_seq)
                        .values(**column_values(Run, values)).returning(t.c.id)).first()
    return done is not None


def heartbeat(conn: Connection, run_id: str, at: float) -> None:
    t = _table(Run)
    conn.execute(update(t).where(t.c.id == run_id).values(heartbeat_at=at))


def thread_messages(conn: Connection, thread_id: str) -> list[Message]:
    t = _table(Message)
    rows = conn.execute(select(t.c.role, t.c.content).where(t.c.thread_id == thread_id).order_by(t.c.seq))
    return [Message(id="", project_id="", thread_id=thread_id, created_at=0, role=r.role, content=r.content)
            for r in rows]


def run_steps(conn: Connection, run_id: str) -> list[RunStep]:
    t = _table(RunStep)
    return [from_row(RunStep, r) for r in conn.execute(select(t).where(t.c.run_id == run_id).order_by(t.c.seq))]


def add(conn: Connection, obj: SQLModel) -> None:
    conn.execute(insert_stmt(type(obj)), to_row(obj))


def close_open_steps(conn: Connection, run_id: str, status: str, stamp_column: str | None, at: int) -> None:
    t = _table(RunStep)
    values: dict[str, Any] = {"status": status}
    if stamp_column:
        values[stamp_column] = at
    conn.execute(update(t).where(t.c.run_id == run_id, t.c.status == "in_progress").values(**values))
