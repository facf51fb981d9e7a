"""Design for failure: a worker process killed mid-step, a lost enqueue, an overdue run — each ends with the
run finished exactly once (no duplicated or lost message or step)."""

import time
import uuid

import openai
import psycopg
import pytest

from tests.model_server import ScriptedModel
from tests.stack import Stack
from tests.v2.test_runs import WEATHER, wait


def tag() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


KILLED_RUNS = 30


def test_worker_killed_with_many_steps_in_flight_redoes_each_once(stack: Stack, client: openai.OpenAI,
                                                                  model: ScriptedModel) -> None:
    """The runs worker is one gevent process holding every step in flight: SIGKILLed mid-stream, it loses them
    all at once. The sweep finds each run's heartbeat stale and redoes its step — exactly once each: one model
    call more, one message, one step."""
    word = tag()
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = []
    for i in range(KILLED_RUNS):
        # The first answer streams slowly (the worker dies during it); the redo answers at once.
        model.script(f"{word}-{i} ", {"text": " ".join(["partial"] * 40), "chunk_delay": 0.1},
                     {"text": f"complete answer {i}"})
        threads.append(client.beta.threads.create(messages=[{"role": "user", "content": f"{word}-{i} "}]))
    runs = [client.beta.threads.runs.create(thread_id=t.id, assistant_id=assistant.id) for t in threads]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(model.requests_for(f"{word}-{i} ") for i in range(KILLED_RUNS)):
        time.sleep(0.05)
    time.sleep(0.5)  # every call is mid-stream
    assert all(len(model.requests_for(f"{word}-{i} ")) == 1 for i in range(KILLED_RUNS))
    stack.respawn("worker")  # SIGKILL; its supervisor starts it again, as Compose or Kubernetes would
    for i, (thread, run) in enumerate(zip(threads, runs, strict=True)):
        final = wait(client, thread.id, run.id, {"completed", "failed"}, timeout=90)
        assert final.status == "completed", (i, final)  # type: ignore[attr-defined]
        assert len(model.requests_for(f"{word}-{i} ")) == 2  # the step really was redone, once
        messages = client.beta.threads.messages.list(thread.id).data
        assert [m.role for m in messages] == ["assistant", "user"]
        assert messages[0].content[0].text.value == f"complete answer {i}"
        assert len(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data) == 1


def test_lost_enqueue_is_recovered_by_the_beat(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    """A run committed but never enqueued (the API died in between) is found by the beat and run."""
    word = tag()
    model.script(word, {"text": "found again"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run_id = f"run_lost{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn(stack), autocommit=True) as conn:  # exactly the row the API would have committed
        conn.execute(
            "INSERT INTO run (id, project_id, thread_id, assistant_id, created_at, status, step_seq, model, tools,"
            " file_ids, parallel_tool_calls, expires_at) SELECT %s, project_id, id, %s, %s, 'queued', 0, 'gpt-4o',"
            " '[]', '[]', true, %s FROM thread WHERE id = %s",
            (run_id, assistant.id, int(time.time()) - 5, int(time.time()) + 600, thread.id))
    final = wait(client, thread.id, run_id, {"completed"}, timeout=30)
    assert final.status == "completed"  # type: ignore[attr-defined]
    assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "found again"


def dsn(stack: Stack) -> str:
    return stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


def test_overdue_run_expires(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "get_weather", "arguments": "{}"}]})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "requires_action" and run.expires_at == run.created_at + 600
    with psycopg.connect(dsn(stack), autocommit=True) as conn:  # fast-forward the clock for this run
        conn.execute("UPDATE run SET expires_at = %s WHERE id = %s", (int(time.time()) - 1, run.id))
    final = wait(client, thread.id, run.id, {"expired"}, timeout=20)
    assert final.status == "expired" and final.expires_at is None  # type: ignore[attr-defined]
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.status == "expired" and step.expired_at
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id,
                                                     tool_outputs=[{"tool_call_id": "x", "output": "late"}])
    client.beta.threads.messages.create(thread.id, role="user", content="the thread is free again")


def test_a_step_stops_at_its_runs_expiry(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    """No pool enforces a soft time limit on a gevent step: the step checks its run's expiry itself, stops
    streaming, and the run expires (nothing of the cut answer is kept)."""
    word = tag()
    model.script(word, {"text": " ".join(["endless"] * 300), "chunk_delay": 0.1})  # 30 s of answer
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 20
    while not model.requests_for(word):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with psycopg.connect(dsn(stack), autocommit=True) as conn:  # the run's lifetime ends in 2 s
        conn.execute("UPDATE run SET expires_at = %s WHERE id = %s", (int(time.time()) + 2, run.id))
    final = wait(client, thread.id, run.id, {"expired", "completed", "failed"}, timeout=30)
    assert final.status == "expired"  # type: ignore[attr-defined]
    # The step noticed (its heartbeat every 5 s tells it the run moved on) and hung up on the model, well before
    # the 30 s the answer would have taken.
    hung_up = time.monotonic() + 12
    while model.in_flight:
        assert time.monotonic() < hung_up, "the step kept streaming past its run's end"
        time.sleep(0.1)
    assert [m.role for m in client.beta.threads.messages.list(thread.id).data] == ["user"]
