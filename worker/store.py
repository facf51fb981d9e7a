"""The engine's database access: statements written in SQLAlchemy Core, compiled once and run on the driver
(shared/driver_sql.py), in short transactions.

The ORM session's bookkeeping (identity map, unit of work, autoflush) cost more than the statements themselves
on this hot path, and so did Core's per-execution work; the column knowledge stays in shared/models.py. No
connection is held between transactions: a step reads, releases, waits minutes for the model, then writes in one
transaction.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select
from sqlmodel import SQLModel

from shared.db import sync_engine
from shared.driver_sql import Prepared, names, prepare
from shared.models import Message, Run, RunStep
from shared.rows import from_values, prepared_insert, to_row
from shared.rows import table as _table

# Thread messages are read newest first, a page at a time, until the prompt's budget is surely filled.
FIRST_PAGE, MAX_PAGE = 32, 512
CHARS_PER_TOKEN, PER_MESSAGE_TOKENS = 4, 4  # as worker/prompt.py estimates


@contextmanager
def begin() -> Iterator[Connection]:
    """One transaction on a pooled connection: committed on success, rolled back on error, then released."""
    with sync_engine().begin() as conn:
        yield conn


@lru_cache
def _load_run(lock: bool) -> Prepared:
    t = _table(Run)
    stmt = select(t).where(t.c.id == bindparam("run_id"))
    return prepare(stmt.with_for_update() if lock else stmt)


def load_run(conn: Connection, run_id: str, *, lock: bool = False) -> Run | None:
    cur = _load_run(lock).execute(conn, {"run_id": run_id})
    row = cur.fetchone()
    return from_values(Run, names(cur), row) if row is not None else None


def _least_tokens(content: list[dict[str, Any]]) -> int:
    """A lower bound of what prompt.py will count for a message: its text alone."""
    chars = sum(len(p["text"]["value"]) for p in content if p.get("type") == "text")
    return PER_MESSAGE_TOKENS + chars // CHARS_PER_TOKEN


class Said(NamedTuple):
    """A thread message as the prompt needs it. Not a Message: building a table model validates and instruments
    it (~100 µs each), 20 ms for the 200 messages that fill an 8k window."""

    role: str
    content: list[dict[str, Any]]


@lru_cache
def _messages_page(paging: bool) -> Prepared:
    """The newest messages of a thread (`paging`: before a `seq`), newest first."""
    t = _table(Message)
    stmt = select(t.c.seq, t.c.role, t.c.content).where(t.c.thread_id == bindparam("thread_id"))
    if paging:
        stmt = stmt.where(t.c.seq < bindparam("before"))
    return prepare(stmt.order_by(t.c.seq.desc()).limit(bindparam("n")))


def recent_messages(conn: Connection, thread_id: str, *, budget: int, last_n: int | None = None) -> list[Said]:
    """The thread's newest messages, oldest first: as many as a prompt of `budget` tokens could hold (or the
    last `last_n`). A run's cost stays flat however long the thread grows; prompt.build trims exactly."""
    out: list[Said] = []
    tokens, before, page = 0, None, FIRST_PAGE
    while tokens < budget and (last_n is None or len(out) < last_n):
        want = page if last_n is None else min(page, last_n - len(out))
        rows = _messages_page(before is not None).execute(
            conn, {"thread_id": thread_id, "before": before, "n": want} if before is not None else
            {"thread_id": thread_id, "n": want}).fetchall()
        for _, role, content in rows:
            out.append(Said(role, content))
            tokens += _least_tokens(content)
            if tokens >= budget:
                break
        if len(rows) < want:
            break
        before, page = rows[-1][0], min(page * 2, MAX_PAGE)
    out.reverse()
    return out


@lru_cache
def _run_steps() -> Prepared:
    t = _table(RunStep)
    return prepare(select(t).where(t.c.run_id == bindparam("run_id")).order_by(t.c.seq))


def run_steps(conn: Connection, run_id: str) -> list[RunStep]:
    cur = _run_steps().execute(conn, {"run_id": run_id})
    cols = names(cur)
    return [from_values(RunStep, cols, r) for r in cur.fetchall()]


def add(conn: Connection, obj: SQLModel) -> None:
    row = to_row(obj)
    prepared_insert(type(obj), tuple(row)).execute(conn, row)
