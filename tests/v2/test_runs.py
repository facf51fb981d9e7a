"""Runs through the current SDK against real workers and the scripted model: lifecycle, function calling,
steps, cancel, the thread lock, upstream errors and truncation."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.model_server import ScriptedModel
from tests.stack import Stack

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def tag() -> str:
    """A unique word to script the model by."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def assistant(client: openai.OpenAI) -> str:
    return client.beta.assistants.create(model="gpt-4-1106-preview", instructions="You are a personal math tutor.",
                                         tools=[WEATHER]).id


def wait(client: openai.OpenAI, thread_id: str, run_id: str, until: set[str], timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in until or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_run_completes_with_a_message(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"text": "The answer is x = 1."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Solve 3x + 11 = 14 {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant,
                                                   poll_interval_ms=50)
    assert run.status == "completed" and run.object == "thread.run" and run.id.startswith("run_")
    assert run.started_at and run.completed_at and run.expires_at is None and run.last_error is None
    assert run.created_at <= run.started_at <= run.completed_at
    assert run.usage and run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens > 0
    assert run.instructions == "You are a personal math tutor." and run.tools[0].function.name == "get_weather"

    reply, question = client.beta.threads.messages.list(thread.id).data
    assert reply.role == "assistant" and reply.content[0].text.value == "The answer is x = 1."
    assert reply.run_id == run.id and reply.assistant_id == assistant and reply.status == "completed"
    assert question.content[0].text.value.startswith("Solve")

    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation" and step.status == "completed" and step.id.startswith("step_")
    assert step.step_details.message_creation.message_id == reply.id and step.usage.total_tokens > 0
    assert client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id).id == step.id

    # What the model was sent: the instructions, then the thread.
    [sent] = model.requests_for(word)
    assert sent["messages"][0] == {"role": "system", "content": "You are a personal math tutor."}
    assert sent["messages"][-1]["content"].endswith(word) and sent["model"] == "gpt-4-1106-preview"

    assert [r.id for r in client.beta.threads.runs.list(thread.id)] == [run.id]
    assert client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"k": "v"}).metadata == {"k": "v"}


def test_run_overrides(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant, model="gpt-4o", instructions="Override.",
        additional_instructions="Also this.", tools=[], temperature=0.2, top_p=0.5, max_completion_tokens=300,
        additional_messages=[{"role": "user", "content": f"extra {word}"}], metadata={"a": "b"},
        poll_interval_ms=50)
    assert run.status == "completed" and run.model == "gpt-4o" and run.tools == [] and run.temperature == 0.2
    [sent] = model.requests_for(word)
    assert sent["messages"][0]["content"] == "Override.\n\nAlso this."
    assert sent["temperature"] == 0.2 and sent["top_p"] == 0.5 and sent["max_tokens"] == 300
    assert "tools" not in sent
    assert [m.role for m in client.beta.threads.messages.list(thread.id, order="asc")] == ["user", "assistant"]


def test_parallel_function_calls(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'},
                                       {"name": "get_weather", "arguments": '{"city": "Rome"}'}]},
                 {"text": "Paris is sunny, Rome is rainy."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Weather in Paris and Rome? {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant,
                                                   poll_interval_ms=50)
    assert run.status == "requires_action" and run.required_action.type == "submit_tool_outputs"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert all(c.type == "function" and c.function.name == "get_weather" for c in calls)
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "tool_calls" and step.status == "in_progress"

    # Outputs must answer exactly the calls asked for.
    for bad in ([{"tool_call_id": calls[0].id, "output": "sunny"}],
                [{"tool_call_id": calls[0].id, "output": "a"}, {"tool_call_id": "call_nope", "output": "b"}],
                [{"tool_call_id": calls[0].id, "output": "a"}, {"tool_call_id": calls[0].id, "output": "b"}]):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=bad)
        assert err.value.body["param"] == "tool_outputs"
    # Nor may messages join the thread while the run waits.
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread.id, role="user", content="hello?")
    assert err.value.body["message"] == f"Can't add messages to {thread.id} while a run {run.id} is active."

    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, poll_interval_ms=50,
        tool_outputs=[{"tool_call_id": calls[1].id, "output": "rainy"},
                      {"tool_call_id": calls[0].id, "output": "sunny"}])
    assert done.status == "completed" and done.required_action is None
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert [c.function.output for c in steps[0].step_details.tool_calls] == ["sunny", "rainy"]
    assert steps[0].status == "completed" and steps[0].completed_at
    # The second model call saw the calls and their outputs.
    second = model.requests_for(word)[-1]["messages"]
    assert second[-3]["tool_calls"][0]["id"] == calls[0].id
    assert [m["content"] for m in second[-2:]] == ["sunny", "rainy"]
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.content[0].text.value == "Paris is sunny, Rome is rainy."
    with pytest.raises(openai.BadRequestError):  # nothing to submit any more
        client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[])


def test_one_active_run_per_thread(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"text": "slow", "delay": 2})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    first = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)
    assert err.value.body["message"].startswith(f"Thread {thread.id} already has an active run")
    assert wait(client, thread.id, first.id, {"completed"}).status == "completed"  # type: ignore[attr-defined]
    client.beta.threads.messages.create(thread.id, role="user", content="now it is fine")


def test_a_clients_retry_of_a_create_gets_the_same_run(stack: Stack, model: ScriptedModel, assistant: str) -> None:
    """The SDKs retry a POST whose answer was lost (a timeout, a 503) and say so (`x-stainless-retry-count`): the
    retry gets the run its first attempt made. A second create that is not a retry is refused as before."""
    word = tag()
    model.script(word, {"text": "slow", "delay": 3})
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30) as http:
        thread = http.post("/threads", json={"messages": [{"role": "user", "content": word}]}).json()
        body = {"assistant_id": assistant, "metadata": {"attempt": "same"}}
        first = http.post(f"/threads/{thread['id']}/runs", json=body, headers={"x-stainless-retry-count": "0"})
        retried = http.post(f"/threads/{thread['id']}/runs", json=body, headers={"x-stainless-retry-count": "1"})
        assert first.status_code == retried.status_code == 200 and retried.json()["id"] == first.json()["id"]
        other = http.post(f"/threads/{thread['id']}/runs", json={**body, "metadata": {"attempt": "other"}},
                          headers={"x-stainless-retry-count": "1"})
        assert other.status_code == 400 and "already has an active run" in other.json()["error"]["message"]
        assert len(http.get(f"/threads/{thread['id']}/runs").json()["data"]) == 1


def test_concurrent_creates_exactly_one_wins(stack: Stack, client: openai.OpenAI, model: ScriptedModel,
                                             assistant: str) -> None:
    word = tag()
    # The winner's model call outlasts the race, so the thread stays locked throughout it.
    model.script(word, {"text": "ok", "delay": 8})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}

    def create(_: int) -> httpx.Response:
        return httpx.post(f"{stack.base_url}/threads/{thread.id}/runs", json={"assistant_id": assistant},
                          headers=headers, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(create, range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 49, statuses
    assert all("already has an active run" in r.json()["error"]["message"] for r in responses if r.status_code == 400)
    assert len(client.beta.threads.runs.list(thread.id).data) == 1


def test_cancel_while_the_model_is_answering(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"text": " ".join(["slowly"] * 40), "chunk_delay": 0.1})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)
    wait(client, thread.id, run.id, {"in_progress"})
    time.sleep(0.5)  # mid-stream
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status in ("cancelling", "cancelled")
    final = wait(client, thread.id, run.id, {"cancelled"})
    assert final.status == "cancelled" and final.cancelled_at and final.expires_at is None  # type: ignore[attr-defined]
    time.sleep(4.5)  # let the model's stream run out: whatever it produced is discarded
    assert [m.role for m in client.beta.threads.messages.list(thread.id).data] == ["user"]
    assert client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data == []
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert err.value.body["message"] == "Cannot cancel run with status 'cancelled'."


def test_cancel_while_waiting_for_tool_outputs(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "get_weather", "arguments": "{}"}]})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant, poll_interval_ms=50)
    assert run.status == "requires_action"
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    final = wait(client, thread.id, run.id, {"cancelled"})
    assert final.status == "cancelled" and final.required_action is None  # type: ignore[attr-defined]
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.status == "cancelled" and step.cancelled_at


@pytest.mark.parametrize(
    ("replies", "status", "code"),
    [
        ([{"error": 500}, {"error": 503}, {"text": "recovered"}], "completed", None),
        ([{"error": 429}, {"text": "recovered"}], "completed", None),
        ([{"error": 400, "message": "prompt too long"}], "failed", "invalid_prompt"),
        ([{"error": 429}] * 5, "failed", "rate_limit_exceeded"),
        ([{"error": 500}] * 5, "failed", "server_error"),
    ],
)
def test_upstream_errors(client: openai.OpenAI, model: ScriptedModel, assistant: str,
                         replies: list[dict[str, object]], status: str, code: str | None) -> None:
    word = tag()
    model.script(word, *replies)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant, poll_interval_ms=50)
    assert run.status == status
    if code:
        assert run.last_error.code == code and run.last_error.message and run.failed_at and run.expires_at is None
        assert [m.role for m in client.beta.threads.messages.list(thread.id)] == ["user"]
    else:
        assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "recovered"


def test_max_completion_tokens_makes_the_run_incomplete(client: openai.OpenAI, model: ScriptedModel,
                                                        assistant: str) -> None:
    word = tag()
    model.script(word, {"text": "cut short", "finish_reason": "length"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant,
                                                   max_completion_tokens=256, poll_interval_ms=50)
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_tokens"


def test_long_threads_are_truncated_oldest_first(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    # The default context window is 8192 tokens (~32k characters): 40 messages of 4k characters overflow it.
    thread = client.beta.threads.create()
    for i in range(40):
        client.beta.threads.messages.create(thread.id, role="user", content=f"message {i} " + "x" * 4000)
    client.beta.threads.messages.create(thread.id, role="user", content=f"newest {word}")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant, poll_interval_ms=50)
    assert run.status == "completed"
    sent = model.requests_for(word)[0]["messages"]
    assert sent[0]["role"] == "system" and sent[-1]["content"] == f"newest {word}"
    assert 2 < len(sent) < 42
    kept = [int(m["content"].split()[1]) for m in sent[1:-1]]
    assert kept == list(range(40 - len(kept), 40))  # a contiguous run of the newest ones
    assert sum(len(json.dumps(m)) for m in sent) // 4 < 8192


def test_create_thread_and_run(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"text": "Hi from a new thread."})
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant, thread={"messages": [{"role": "user", "content": word}], "metadata": {"m": "1"}},
        poll_interval_ms=50)
    assert run.status == "completed"
    assert client.beta.threads.retrieve(run.thread_id).metadata == {"m": "1"}
    assert client.beta.threads.messages.list(run.thread_id).data[0].content[0].text.value == "Hi from a new thread."


def test_runs_of_other_projects_are_invisible(client: openai.OpenAI, other_client: openai.OpenAI,
                                              assistant: str) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant, poll_interval_ms=50)
    for call in (lambda: other_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
                 lambda: other_client.beta.threads.runs.list(thread.id),
                 lambda: other_client.beta.threads.runs.cancel(run.id, thread_id=thread.id),
                 lambda: other_client.beta.threads.runs.steps.list(run.id, thread_id=thread.id),
                 lambda: other_client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.NotFoundError):  # nor run another project's assistant
        other_client.beta.threads.create_and_run(assistant_id=assistant)


def test_run_validation(client: openai.OpenAI, assistant: str) -> None:
    thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_nope")
    for kwargs, param in (({"max_completion_tokens": 10}, "max_completion_tokens"),
                          ({"truncation_strategy": {"type": "last_messages"}}, "truncation_strategy"),
                          ({"tool_choice": "sometimes"}, "tool_choice"),
                          ({"temperature": 3}, "temperature")):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant, **kwargs)  # type: ignore[arg-type]
        assert err.value.body["param"] == param, kwargs
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.runs.retrieve("run_nope", thread_id=thread.id)
    assert err.value.body["message"] == "No run found with id 'run_nope'."
