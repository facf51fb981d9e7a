"""Infrastructure blips under many in-flight runs: Redis or Postgres restarted mid-answer. Every run completes
exactly once (one assistant message, one message_creation step); the API answers 503 with Retry-After while a
dependency is away (which the SDK retries), never a bare 500.

The test stack's Redis keeps no data (appendonly off), so its restart is the harsh case: queued tasks, unacked
tasks and event streams are all gone, and the runs are recovered by the beat's sweep.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from tests.model_server import ScriptedModel
from tests.stack import Stack

RUNS = 20


def _poll(client: openai.OpenAI, thread_id: str, run_id: str, seen: list[int], timeout: float = 120) -> Any:
    """Poll like a patient user: the SDK retries 5xx itself; past its retries, a 503 is waited out here."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        except openai.APIStatusError as exc:
            seen.append(exc.status_code)
            time.sleep(0.5)
            continue
        except openai.APIConnectionError:
            time.sleep(0.5)
            continue
        if run.status in ("completed", "failed", "cancelled", "expired", "incomplete"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def _under_load(stack: Stack, client: openai.OpenAI, model: ScriptedModel, blip: Callable[[], None]) -> None:
    word = f"b{uuid.uuid4().hex[:8]}"
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = []
    for i in range(RUNS):
        # A 3-second answer: the blip comes while every run is mid-stream.
        model.script(f"{word}-{i} ", {"text": " ".join(["slow"] * 30), "chunk_delay": 0.1},
                     {"text": " ".join(["slow"] * 30), "chunk_delay": 0.05})
        threads.append(client.beta.threads.create(messages=[{"role": "user", "content": f"{word}-{i} "}]))
    runs = [client.beta.threads.runs.create(thread_id=t.id, assistant_id=assistant.id) for t in threads]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(model.requests_for(f"{word}-{i} ") for i in range(RUNS)):
        time.sleep(0.05)
    time.sleep(0.5)
    statuses: list[int] = []
    with ThreadPoolExecutor(RUNS) as pool:
        finals = [pool.submit(_poll, client, t.id, r.id, statuses) for t, r in zip(threads, runs, strict=True)]
        blip()
        # While it is down and coming back, the API answers 503s, never a bare 500.
        probe_until = time.monotonic() + 5
        headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
        while time.monotonic() < probe_until:
            r = httpx.get(f"{stack.base_url}/threads/{threads[0].id}/runs/{runs[0].id}", headers=headers,
                          timeout=30)
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.headers["retry-after"] and r.json()["error"]["type"] == "server_error"
            time.sleep(0.1)
        results = [f.result() for f in finals]
    assert 500 not in statuses and all(s in (200, 503) for s in statuses), statuses
    for thread, run in zip(threads, results, strict=True):
        assert run.status == "completed", (run.id, run.status, run.last_error)
        messages = client.beta.threads.messages.list(thread.id).data
        assert [m.role for m in messages] == ["assistant", "user"], run.id
        assert messages[0].content[0].text.value == " ".join(["slow"] * 30)
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
        assert [s.type for s in steps] == ["message_creation"], run.id
    assert "unhandled error" not in stack.log("api")


@pytest.mark.timeout(600)
def test_redis_restart_under_many_runs(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    _under_load(stack, client, model, lambda: stack.respawn("redis"))


@pytest.mark.timeout(600)
def test_postgres_restart_under_many_runs(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    _under_load(stack, client, model, lambda: stack.respawn("postgres"))


def test_a_connection_lost_after_the_answer_was_sent_is_not_an_error(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The request's session is closed after its response went out (FastAPI runs a yield dependency's exit
    then), so a Postgres restart in between makes the closing ROLLBACK fail on a dead connection. Nothing is lost
    (Postgres dropped the transaction with the connection) and the client already has its answer: the close must
    end quietly, not as an unhandled error after the response started, and give the connection's slot back."""
    from sqlalchemy import text

    from shared import config, db

    monkeypatch.setenv("DATABASE_URL", stack.env["DATABASE_URL"])
    caches = (config.get_settings, db.async_engine, db._session_factory)
    for cached in caches:
        cached.cache_clear()

    async def request_whose_connection_dies() -> None:
        engine = db.async_engine()
        try:
            scope = db.session_scope()
            session = await anext(scope)
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with engine.connect() as other:  # a second pooled connection: the first is checked out
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(StopAsyncIteration):
                await anext(scope)
            assert engine.pool.checkedout() == 0
        finally:
            await engine.dispose()

    try:
        with caplog.at_level("WARNING", logger="shared.db"):
            asyncio.run(request_whose_connection_dies())
    finally:
        for cached in caches:
            cached.cache_clear()
    assert "found its connection gone" in caplog.text  # the ROLLBACK did meet the dead connection
