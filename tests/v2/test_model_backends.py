"""Model names routed to several backends, and what real servers do differently from OpenAI, replayed by scripted
models (tests/model_server.py QUIRKS) so that regressions show without the real servers (tests/backends runs
against a real llama-server): tool-call deltas repeating their id and name, no usage in streams, a 500 for an
assistant message with `content: null`, a named tool_choice ignored, connections closed after each stream,
validation errors sent as 500s."""

import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from openai import AssistantEventHandler

from tests.model_server import PYDANTIC_NULL_CONTENT, ScriptedModel
from tests.stack import Stack
from tests.v2.test_operations import sample

WEATHER = {"type": "function", "function": {
    "name": "getCurrentWeather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}}
CLOCK = {"type": "function", "function": {"name": "getTime", "parameters": {"type": "object", "properties": {}}}}
NAMED = {"type": "function", "function": {"name": "getCurrentWeather"}}
PARIS = '{"location": "Paris, France", "unit": "celsius"}'
ROME = '{"location": "Rome, Italy", "unit": "celsius"}'


def tag() -> str:
    return f"q{uuid.uuid4().hex[:10]}"


def usage_of(run: Any) -> tuple[int, int]:
    return run.usage.prompt_tokens, run.usage.completion_tokens


def test_models_lists_what_is_routable(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"scripted-llama-cpp-python", "scripted-llama-server", "scripted-openai", "scripted-text-only"} <= ids
    model = client.models.retrieve("scripted-openai")
    assert (model.id, model.object, model.owned_by, model.created) == ("scripted-openai", "model", "openai", 0)
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found" and err.value.param == "model"


def test_llama_cpp_python_repeated_ids_no_usage_and_null_content(
        client: openai.OpenAI, quirky_models: dict[str, ScriptedModel]) -> None:
    """Streamed forced calls whose every delta repeats id and name, a stream without usage, then the follow-up that
    server would refuse with a 500 if the assistant's tool-call message had content null."""
    server = quirky_models["llama-cpp-python"]
    word = tag()
    server.script(word, {"tool_calls": [{"name": "getCurrentWeather", "arguments": PARIS},
                                        {"name": "getCurrentWeather", "arguments": ROME}], "arg_chunk": 4},
                  {"text": "Sunny in both."})
    assistant = client.beta.assistants.create(model="scripted-llama-cpp-python", tools=[CLOCK, WEATHER])
    seen: list[str] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def, override]
            seen.append(tool_call.function.name)

    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]},
            tool_choice=NAMED, event_handler=Handler()) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [("getCurrentWeather", PARIS),
                                                                       ("getCurrentWeather", ROME)]
    assert seen == ["getCurrentWeather", "getCurrentWeather"]  # what the stream told, not the name 13 times
    assert usage_of(run)[0] > 0 and usage_of(run)[1] > 0  # the server sent none: estimated

    first = server.requests_for(word)[0]
    # llama-cpp-python forces a named choice itself: sent as it is, with every tool, streamed.
    assert first["tool_choice"] == NAMED and len(first["tools"]) == 2 and first["stream"] is True
    assert first["model"] == "smollm2"

    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=run.thread_id, poll_interval_ms=50,
        tool_outputs=[{"tool_call_id": c.id, "output": "22 C, sunny"} for c in calls])
    assert done.status == "completed", done.last_error
    assert client.beta.threads.messages.list(run.thread_id).data[0].content[0].text.value == "Sunny in both."
    follow_up = server.requests_for(word)[1]
    said = [m for m in follow_up["messages"] if m["role"] == "assistant"]
    assert said[0]["content"] == "" and len(said[0]["tool_calls"]) == 2
    assert [m["tool_call_id"] for m in follow_up["messages"] if m["role"] == "tool"] == [c.id for c in calls]
    # After the forced call was answered, the model chooses: with tools + auto, that server gives a model that
    # chooses words an empty message, so the turn is asked without streaming, then again without tools.
    assert follow_up["tool_choice"] == "auto" and follow_up["stream"] is False
    words = server.requests_for(word)[2]
    assert "tools" not in words and words["stream"] is True and words["messages"] == follow_up["messages"]
    assert usage_of(done)[0] > usage_of(run)[0]


def test_llama_cpp_python_words_with_tools_offered(client: openai.OpenAI,
                                                         quirky_models: dict[str, ScriptedModel]) -> None:
    server = quirky_models["llama-cpp-python"]
    word = tag()
    server.script(word, {"text": "Hello from a server that cannot stream this."})
    # With tools and tool_choice auto that server gives a model that chooses words an empty message.
    assistant = client.beta.assistants.create(model="scripted-llama-cpp-python", tools=[WEATHER])
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]}) as stream:
        texts = list(stream.text_deltas)
        run = stream.get_final_run()
    assert run.status == "completed" and "".join(texts) == "Hello from a server that cannot stream this."
    assert usage_of(run)[1] > 0
    choose, say = server.requests_for(word)
    assert (choose["tool_choice"], choose["stream"]) == ("auto", False) and "tools" not in say and say["stream"]


def test_llama_server_forced_calls_are_schema_constrained(client: openai.OpenAI,
                                                          quirky_models: dict[str, ScriptedModel]) -> None:
    """That server ignores a named tool_choice and lets the model write text before a "required" call (the
    scripted one then writes text to the limit, as SmolLM2 did): the engine asks for the call's arguments as
    schema-constrained JSON instead, and makes the call of them."""
    server = quirky_models["llama-server"]
    word = tag()
    server.script(word, {"tool_calls": [{"name": "getCurrentWeather", "arguments": PARIS}]},
                  {"text": "It is sunny."})
    assistant = client.beta.assistants.create(model="scripted-llama-server", tools=[CLOCK, WEATHER],
                                              instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    seen: list[str] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def, override]
            seen.append(tool_call.function.arguments)

        def on_tool_call_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def, override]
            seen.append(delta.function.arguments or "")

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, tool_choice=NAMED,
                                         max_completion_tokens=256, event_handler=Handler()) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("getCurrentWeather", PARIS)
    assert "".join(seen) == PARIS and len(seen) > 1  # the arguments streamed as they were written
    first = server.requests_for(word)[0]
    assert "tools" not in first and "tool_choice" not in first and first["max_tokens"] == 256
    assert first["response_format"]["json_schema"]["schema"] == WEATHER["function"]["parameters"]
    assert first["messages"][0]["content"].startswith("Be brief.\n\nCall the function `getCurrentWeather`")
    assert "max_completion_tokens" not in first
    # Nothing but the call: no message of the run.
    assert [m.role for m in client.beta.threads.messages.list(thread.id).data] == ["user"]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "22 C"}],
        poll_interval_ms=50)
    assert done.status == "completed"
    follow_up = server.requests_for(word)[1]
    assert follow_up["tool_choice"] == "auto" and len(follow_up["tools"]) == 2
    assert [m["role"] for m in follow_up["messages"]][-2:] == ["assistant", "tool"]

    # "required" among several tools: one of them, chosen by the model as {"name", "arguments"}.
    word = tag()
    server.script(word, {"tool_calls": [{"name": "getTime", "arguments": "{}"}]}, {"text": "Noon."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice="required", poll_interval_ms=50)
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("getTime", "{}")
    assert len(server.requests_for(word)[0]["response_format"]["json_schema"]["schema"]["anyOf"]) == 2


def test_llama_server_closing_connections_costs_no_failed_call(
        stack: Stack, client: openai.OpenAI, quirky_models: dict[str, ScriptedModel]) -> None:
    server = quirky_models["llama-server"]
    before = httpx.get(stack.worker_metrics_url).text
    dropped = server.dropped
    assistant = client.beta.assistants.create(model="scripted-llama-server")
    for _ in range(8):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": tag()}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                       poll_interval_ms=50)
        assert run.status == "completed" and usage_of(run)[0] > 0
    after = httpx.get(stack.worker_metrics_url).text
    # The quirk happened (a worker process sent a request on a connection the server had given up) ...
    assert server.dropped > dropped
    # ... and cost no failed call, so no retry and no backoff.
    labels = {"model": "scripted-llama-server", "outcome": "server_error"}
    assert (sample(after, "assistants_model_request_duration_seconds_count", **labels) or 0) == \
        (sample(before, "assistants_model_request_duration_seconds_count", **labels) or 0)


def test_stale_connection_is_sent_again_at_once(quirky_models: dict[str, ScriptedModel],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, in this process and deterministic: one client, two calls in a row."""
    from shared import backends
    from shared.config import get_settings
    from worker import model

    server = ScriptedModel(quirks="llama-server").start()
    try:
        monkeypatch.setenv("LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("LLM_MAX_RETRIES", "0")  # a failed call would fail outright
        for env in ("LLM_BACKENDS", "LLM_BACKENDS_FILE", "LLM_MODEL_MAP", "LLM_DEFAULT_MODEL"):
            monkeypatch.delenv(env, raising=False)
        for cached in (get_settings, backends.routes):
            cached.cache_clear()
        retried: list[int] = []
        for n in range(3):
            result = model.complete(model.ModelRequest(model="m", messages=[{"role": "user", "content": f"hi {n}"}]),
                                    on_text=lambda _: None, on_tool_delta=lambda *_: None,
                                    should_stop=lambda: False, on_retry=lambda: retried.append(1))
            assert result.text == f"You said: hi {n}"
        assert server.dropped == 2 and retried == []
    finally:
        server.stop()
        for cached in (get_settings, backends.routes):
            cached.cache_clear()


def test_a_validation_error_500_is_an_invalid_prompt(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"error": 500, "body": {"error": {"message": PYDANTIC_NULL_CONTENT,
                                                         "type": "internal_server_error", "param": None,
                                                         "code": None}}})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "failed" and run.last_error.code == "invalid_prompt"
    assert run.last_error.message == ("The model server refused the request: validation error: "
                                      "messages.1.content: Input should be a valid string (and 2 more)")
    assert len(model.requests_for(word)) == 1  # not retried: sending it again cannot help


def test_openai_route_forces_natively_and_names_the_limit_as_openai_does(client: openai.OpenAI,
                                                                         model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "getCurrentWeather", "arguments": PARIS}]})
    assistant = client.beta.assistants.create(model="scripted-openai", tools=[CLOCK, WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice=NAMED, max_completion_tokens=300, poll_interval_ms=50)
    assert run.status == "requires_action"
    [sent] = model.requests_for(word)
    assert sent["model"] == "gpt-4o-2024-08-06" and sent["tool_choice"] == NAMED and len(sent["tools"]) == 2
    assert sent["max_completion_tokens"] == 300 and "max_tokens" not in sent
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_required_forces_the_first_turn_only(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "getTime", "arguments": "{}"}]}, {"text": "It is noon."})
    assistant = client.beta.assistants.create(model="scripted-openai", tools=[CLOCK])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice="required", poll_interval_ms=50)
    [call] = run.required_action.submit_tool_outputs.tool_calls
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "12:00"}],
        poll_interval_ms=50)
    assert done.status == "completed" and done.tool_choice == "required"  # the run keeps what was asked
    assert [r["tool_choice"] for r in model.requests_for(word)] == ["required", "auto"]


def test_a_model_without_tools(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"text": "No tools here."})
    assistant = client.beta.assistants.create(model="scripted-text-only", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "completed" and "tools" not in model.requests_for(word)[0]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice=NAMED, poll_interval_ms=50)
    assert run.status == "failed" and run.last_error.code == "invalid_prompt"
    assert "'scripted-text-only' is configured without tools" in run.last_error.message


def test_estimated_usage_is_counted_apart(stack: Stack, client: openai.OpenAI,
                                          quirky_models: dict[str, ScriptedModel]) -> None:
    server = quirky_models["llama-cpp-python"]
    word = tag()
    server.script(word, {"text": "Counted by estimate."})
    before = httpx.get(stack.worker_metrics_url).text
    assistant = client.beta.assistants.create(model="scripted-llama-cpp-python")
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]}) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "completed" and min(usage_of(run)) > 0
    after = httpx.get(stack.worker_metrics_url).text
    name = "assistants_model_usage_estimated_total"
    assert (sample(after, name, model="smollm2") or 0) >= (sample(before, name, model="smollm2") or 0) + 1


def test_a_model_silent_for_seconds_keeps_the_stream(client: openai.OpenAI, model: ScriptedModel) -> None:
    """A real model can say nothing for a while (a long prompt is read first: 18 s for 1,700 tokens on
    llama-server here); the SSE stream must wait for it rather than end after the Redis client's 5 s timeout."""
    word = tag()
    model.script(word, {"text": "Worth the wait.", "delay": 7})
    assistant = client.beta.assistants.create(model="gpt-4o")
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]}) as stream:
        texts = list(stream.text_deltas)
        run = stream.get_final_run()
    assert run.status == "completed" and "".join(texts) == "Worth the wait."


def test_cancel_hangs_up_on_the_model(client: openai.OpenAI, model: ScriptedModel) -> None:
    """A cancelled run's worker stops reading the answer and closes the connection, which is how a real server
    (llama-server) learns to stop generating; the task confirming the cancel must not hide the cancel from it."""
    word = tag()
    model.script(word, {"text": " ".join(["slowly"] * 80), "chunk_delay": 0.1})
    assistant = client.beta.assistants.create(model="gpt-4o")
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]}) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                run = stream.current_run
                assert run is not None
                client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
                cancelled_at = time.monotonic()
                break
    deadline = time.monotonic() + 6  # the whole answer would take 8 s
    while not any(w == word for w, _ in model.aborted) and time.monotonic() < deadline:
        time.sleep(0.05)
    [(_, hung_up)] = [a for a in model.aborted if a[0] == word]
    assert hung_up - cancelled_at < 3
