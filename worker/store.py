"""The engine's database access: SQLAlchemy Core statements, in short transactions.

The ORM session's bookkeeping (identity map, unit of work, autoflush) cost more than the statements themselves
on this hot path; Core keeps the column knowledge in shared/models.py and drops the rest. No connection is held
between transactions: a step reads, releases, waits minutes for the model, then writes in one transaction.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import Connection, select
from sqlmodel import SQLModel

from shared.db import sync_engine
from shared.models import Message, Run, RunStep
from shared.rows import from_row, insert_stmt, to_row
from shared.rows import table as _table

# Thread messages are read newest first, a page at a time, until the prompt's budget is surely filled.
FIRST_PAGE, MAX_PAGE = 32, 512
CHARS_PER_TOKEN, PER_MESSAGE_TOKENS = 4, 4  # as worker/prompt.py estimates


@contextmanager
def begin() -> Iterator[Connection]:
    """One transaction on a pooled connection: committed on success, rolled back on error, then released."""
    with sync_engine().begin() as conn:
        yield conn


def load_run(conn: Connection, run_id: str, *, lock: bool = False) -> Run | None:
    stmt = select(_table(Run)).where(_table(Run).c.id == run_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    return from_row(Run, row) if row is not None else None


def _least_tokens(content: list[dict[str, Any]]) -> int:
    """A lower bound of what prompt.py will count for a message: its text alone."""
    chars = sum(len(p["text"]["value"]) for p in content if p.get("type") == "text")
    return PER_MESSAGE_TOKENS + chars // CHARS_PER_TOKEN


class Said(NamedTuple):
    """A thread message as the prompt needs it. Not a Message: building a table model validates and instruments
    it (~100 µs each), 20 ms for the 200 messages that fill an 8k window."""

    role: str
    content: list[dict[str, Any]]


def recent_messages(conn: Connection, thread_id: str, *, budget: int, last_n: int | None = None) -> list[Said]:
    """The thread's newest messages, oldest first: as many as a prompt of `budget` tokens could hold (or the
    last `last_n`). A run's cost stays flat however long the thread grows; prompt.build trims exactly."""
    t = _table(Message)
    out: list[Said] = []
    tokens, before, page = 0, None, FIRST_PAGE
    while tokens < budget and (last_n is None or len(out) < last_n):
        want = page if last_n is None else min(page, last_n - len(out))
        stmt = select(t.c.seq, t.c.role, t.c.content).where(t.c.thread_id == thread_id)
        if before is not None:
            stmt = stmt.where(t.c.seq < before)
        rows = conn.execute(stmt.order_by(t.c.seq.desc()).limit(want)).all()
        for r in rows:
            out.append(Said(r.role, r.content))
            tokens += _least_tokens(r.content)
            if tokens >= budget:
                break
        if len(rows) < want:
            break
        before, page = rows[-1].seq, min(page * 2, MAX_PAGE)
    out.reverse()
    return out


def run_steps(conn: Connection, run_id: str) -> list[RunStep]:
    t = _table(RunStep)
    return [from_row(RunStep, r) for r in conn.execute(select(t).where(t.c.run_id == run_id).order_by(t.c.seq))]


def add(conn: Connection, obj: SQLModel) -> None:
    conn.execute(insert_stmt(type(obj)), to_row(obj))
