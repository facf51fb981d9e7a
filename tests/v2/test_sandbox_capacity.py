"""The global cap on live code_interpreter sessions: a call that needs a new session waits for a free one, and
past SANDBOX_QUEUE_SECONDS the model is told the tool is busy. A stack of its own, with a cap of one."""

import json
import time
import uuid
from collections.abc import Iterator

import openai
import pytest

from tests import stack as stack_mod
from tests.model_server import ScriptedModel


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel) -> Iterator[openai.OpenAI]:
    s = stack_mod.start(tmp_path_factory.mktemp("capped"), {
        "LLM_BASE_URL": model.base_url, "LLM_API_KEY": "test", "SANDBOX_MAX_SESSIONS": "1",
        "SANDBOX_QUEUE_SECONDS": "6", "SANDBOX_POOL_SIZE": "1"})
    yield openai.OpenAI(base_url=s.base_url, api_key=s.api_key)
    stack_mod.stop(s)


def code(src: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": json.dumps({"code": src})}]}


def run_code(client: openai.OpenAI, model: ScriptedModel, src: str) -> tuple[str, str, str]:
    word = f"c{uuid.uuid4().hex[:10]}"
    model.script(word, code(src), {"text": "ok"})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    return thread.id, run.id, word


def logs_of(client: openai.OpenAI, thread_id: str, run_id: str) -> str:
    run = client.beta.threads.runs.poll(run_id, thread_id=thread_id, poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    step = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data[0]
    [call] = step.step_details.tool_calls
    return call.code_interpreter.outputs[0].logs


def test_past_the_cap_a_call_waits_then_the_model_hears_it_is_busy(capped: openai.OpenAI,
                                                                     model: ScriptedModel) -> None:
    first, run, _ = run_code(capped, model, "print('one')")
    assert logs_of(capped, first, run) == "one\n"  # holds the only session now

    started = time.monotonic()
    second, run, word = run_code(capped, model, "print('two')")
    logs = logs_of(capped, second, run)
    assert "code_interpreter is busy: all 1 sandbox sessions are in use" in logs
    assert time.monotonic() - started >= 5  # it waited for a free session first
    assert "The code did not run" in model.requests_for(word)[1]["messages"][-1]["content"]

    # The session's thread goes away: a waiting call takes the freed session.
    third, run, _ = run_code(capped, model, "print('three')")
    time.sleep(1.5)
    capped.beta.threads.delete(first)
    assert logs_of(capped, third, run) == "three\n"
