"""The hot path's statements run on the driver (shared/driver_sql.py), not through Core's execution. They must
be indistinguishable from Core's to everything else: the same stored values, the same errors, and a connection
found dead must leave the pool, as Core would have seen to."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from sqlalchemy import Engine, create_engine, exc, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.ids import new_id, now
from shared.models import Message
from shared.rows import prepared_insert, table, to_row
from tests.stack import Stack
from worker import store


@pytest.fixture
def engine(stack: Stack) -> Iterator[Engine]:
    e = create_engine(stack.env["DATABASE_URL"], pool_size=1, max_overflow=0)
    yield e
    e.dispose()


@dataclass
class Thread:
    id: str
    project_id: str


def _message(thread: Thread, content: list[dict[str, Any]]) -> Message:
    return Message(id=new_id("message"), project_id=thread.project_id, thread_id=thread.id, created_at=now(),
                   role="user", content=content, attachments=[], meta=None)


@pytest.fixture
def thread(client: openai.OpenAI, engine: Engine) -> Thread:
    thread_id = client.beta.threads.create().id
    with engine.connect() as conn:
        project = conn.execute(text("SELECT project_id FROM thread WHERE id = :t"), {"t": thread_id}).scalar_one()
    return Thread(thread_id, project)


def _stored(engine: Engine, message_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT content::text, attachments::text, metadata::text, status, role, "
                                "incomplete_details::text FROM message WHERE id = :m"), {"m": message_id}).one()
    return dict(row._mapping)


def test_rows_are_stored_as_core_stores_them(engine: Engine, thread: Thread) -> None:
    """JSON columns included: Core writes Python None into a JSONB column as JSON null, not SQL NULL, and the
    driver's statements must too (readers compare with either)."""
    content = [{"type": "text", "text": {"value": "naïve 100% \"quoted\"", "annotations": []}}]
    by_core, by_driver = _message(thread, content), _message(thread, content)
    with engine.begin() as conn:
        conn.execute(insert(table(Message)), to_row(by_core))
        row = to_row(by_driver)
        prepared_insert(Message, tuple(row)).execute(conn, row)
    assert _stored(engine, by_driver.id) == _stored(engine, by_core.id)
    assert _stored(engine, by_driver.id)["metadata"] == "null"


def test_a_driver_error_arrives_as_sqlalchemys(engine: Engine, thread: Thread) -> None:
    m = _message(thread, [])
    with engine.begin() as conn:
        store.add(conn, m)
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        store.add(conn, m)  # the same id again


def test_a_connection_found_dead_leaves_the_pool(engine: Engine, thread: Thread) -> None:
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with create_engine(engine.url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        with pytest.raises(exc.OperationalError) as raised:
            store.load_run(conn, "run_nonexistent")
        assert raised.value.connection_invalidated
    # The pool's one connection was thrown away, not handed out again dead.
    with engine.begin() as conn:
        assert store.load_run(conn, "run_nonexistent") is None
        assert store.recent_messages(conn, thread.id, budget=1000) == []


def test_a_dead_connection_retires_the_pool_opened_before_it(stack: Stack) -> None:
    """Postgres restarted: every pooled connection is dead, and there is no pre-ping to find them one by one.
    The first statement to meet one must retire them all, as Core does, or each would fail a step in turn."""
    engine = create_engine(stack.env["DATABASE_URL"], pool_size=2, max_overflow=0)
    try:
        with engine.connect() as first, engine.connect() as second:
            pids = [c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in (first, second)]
        with create_engine(engine.url).connect() as other:
            for pid in pids:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        with pytest.raises(exc.OperationalError), engine.begin() as conn:
            store.load_run(conn, "run_nonexistent")
        with engine.begin() as conn:  # the other pooled connection was dead too: it must not be handed out
            assert store.load_run(conn, "run_nonexistent") is None
    finally:
        engine.dispose()


def test_a_block_without_begin_commits_what_ran_on_the_driver(engine: Engine, thread: Thread) -> None:
    m = _message(thread, [])
    with engine.connect() as conn:
        store.add(conn, m)  # the first statement of the block: it must open the transaction commit() ends
        conn.commit()
    assert _stored(engine, m.id)["role"] == "user"


def test_the_async_path_too(stack: Stack, thread: Thread) -> None:
    async def check() -> None:
        e = create_async_engine(stack.env["DATABASE_URL"], pool_size=1, max_overflow=0)
        try:
            m = _message(thread, [{"type": "text", "text": {"value": "hi", "annotations": []}}])
            row = to_row(m)
            async with e.begin() as conn:
                await prepared_insert(Message, tuple(row)).execute_async(conn, row)
            with pytest.raises(exc.IntegrityError):
                async with e.begin() as conn:
                    await prepared_insert(Message, tuple(row)).execute_async(conn, row)
            async with e.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with create_async_engine(e.url).connect() as other:
                    await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    await other.commit()
                with pytest.raises(exc.OperationalError) as raised:
                    await prepared_insert(Message, tuple(row)).execute_async(conn, row)
                assert raised.value.connection_invalidated
            async with e.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM message WHERE id = :m"),
                                           {"m": m.id})).scalar_one() == 1
        finally:
            await e.dispose()

    asyncio.run(check())
