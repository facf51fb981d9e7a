"""The seed's flows through the official SDK against llama.cpp's llama-server running SmolLM2-135M-Instruct.

The model is weak: it rarely decides to call a tool, and its words are not what is tested. Tool calls are forced
with a `tool_choice` naming the tool (which llama-server ignores: the engine offers only that tool and requires a
call), with the wording that got a call every time in the measurements (../shared/backends/llama-cpp.md: "Respond
only with a <tool_call>"). Asserted: statuses, shapes, that the code ran and the search searched, and usage on
every completed run."""

import io
import json
import time
import urllib.request
from typing import Any

import httpx
import openai
from openai import AssistantEventHandler

from tests.stack import Stack
from tests.v2.test_operations import sample

SYSTEM = "You are a helpful assistant that can call functions."
ASK_WEATHER = "What's the weather in Paris, France in celsius? Respond only with a <tool_call>."
WEATHER = {"type": "function", "function": {
    "name": "getCurrentWeather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}}
CLOCK = {"type": "function", "function": {"name": "getTime", "description": "Get the current time",
                                          "parameters": {"type": "object", "properties": {}}}}
NAMED = {"type": "function", "function": {"name": "getCurrentWeather"}}
MODEL = "smollm2-135m-instruct"
MAX_TURNS = 4  # tool rounds a run may take before it must have answered


def assert_usage(run: Any) -> None:
    assert run.usage is not None and run.usage.prompt_tokens > 0 and run.usage.completion_tokens > 0, run.usage
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens


def answer_calls(client: openai.OpenAI, run: Any, output: str = "22 degrees celsius and sunny") -> Any:
    """Submit outputs for as long as the run asks (after the forced call the model chooses, and may call again)."""
    for _ in range(MAX_TURNS):
        if run.status != "requires_action":
            return run
        calls = run.required_action.submit_tool_outputs.tool_calls
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=run.thread_id, poll_interval_ms=100, timeout=300,
            tool_outputs=[{"tool_call_id": c.id, "output": output} for c in calls])
    return run


def weather_assistant(client: openai.OpenAI, model: str = MODEL) -> str:
    return client.beta.assistants.create(model=model, instructions=SYSTEM, tools=[CLOCK, WEATHER],
                                         temperature=0).id


def test_plain_reply_polled(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL, instructions="You are a helpful assistant.",
                                              temperature=0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the capital of France?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=300)
    assert run.status == "completed", run.last_error
    assert_usage(run)
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.role == "assistant" and reply.status == "completed" and reply.content[0].text.value.strip()
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation" and step.usage.completion_tokens == run.usage.completion_tokens


def test_plain_reply_streamed(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL, temperature=0)
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, max_completion_tokens=256,
            thread={"messages": [{"role": "user", "content": "What is the capital of Italy?"}]}) as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
        messages = stream.get_final_messages()
    assert run.status == "completed", run.last_error
    assert_usage(run)
    deltas = events.count("thread.message.delta")
    assert events[-3:] == ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]
    assert deltas > 1  # token by token, not one lump
    stored = client.beta.threads.messages.list(run.thread_id).data[0]
    assert stored.content[0].text.value == messages[0].content[0].text.value != ""


def test_function_call_forced_polled(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": ASK_WEATHER}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=weather_assistant(client),
                                                   tool_choice=NAMED, max_completion_tokens=256,
                                                   poll_interval_ms=100, timeout=300)
    assert run.status == "requires_action", (run.status, run.last_error, run.incomplete_details)
    assert_usage(run)
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert calls and all(c.type == "function" and c.function.name == "getCurrentWeather" for c in calls)
    for c in calls:
        arguments = json.loads(c.function.arguments)  # the server's grammar keeps them to the schema
        assert isinstance(arguments["location"], str) and arguments.get("unit", "celsius") in ("celsius",
                                                                                            "fahrenheit")
    done = answer_calls(client, run)
    assert done.status == "completed", (done.status, done.last_error, done.incomplete_details)
    assert_usage(done)
    assert done.usage.total_tokens > run.usage.total_tokens
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert steps[-1].type == "message_creation" and any(s.type == "tool_calls" for s in steps)


def test_function_call_forced_streamed(client: openai.OpenAI) -> None:
    pieces: dict[str, str] = {}

    class Handler(AssistantEventHandler):
        def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def, override]
            pieces[tool_call.id] = tool_call.function.arguments

        def on_tool_call_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def, override]
            if delta.type == "function" and delta.function and delta.function.arguments:
                pieces[snapshot.id] = pieces.get(snapshot.id, "") + delta.function.arguments

    with client.beta.threads.create_and_run_stream(
            assistant_id=weather_assistant(client), thread={"messages": [{"role": "user", "content": ASK_WEATHER}]},
            tool_choice=NAMED, max_completion_tokens=256, event_handler=Handler()) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action", (run.status, run.last_error, run.incomplete_details)
    calls = run.required_action.submit_tool_outputs.tool_calls
    # What the stream carried adds up to what the run asks for.
    assert {c.id: c.function.arguments for c in calls} == pieces
    assert all(c.function.name == "getCurrentWeather" for c in calls)
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=run.thread_id, run_id=run.id,
            tool_outputs=[{"tool_call_id": c.id, "output": "22 degrees celsius"} for c in calls]) as stream:
        events = [e.event for e in stream]
        final = stream.get_final_run()
    final = answer_calls(client, final)
    assert final.status == "completed", (final.status, final.last_error)
    assert events[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert_usage(final)


def test_code_interpreter_runs_the_models_code(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model=MODEL, tools=[{"type": "code_interpreter"}], temperature=0,
        instructions="You are a helpful assistant that can call functions. Write Python code to answer.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Print hello with Python."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice={"type": "code_interpreter"},
                                                   max_completion_tokens=256, poll_interval_ms=100, timeout=300)
    run = answer_calls(client, run)
    assert run.status == "completed", (run.status, run.last_error, run.incomplete_details)
    assert_usage(run)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    calls = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    assert calls and calls[0].type == "code_interpreter" and calls[0].code_interpreter.input.strip()
    assert steps[0].status == "completed"
    # The sandbox ran it: what it printed, or its error, came back as the call's output, and reached the model.
    outputs = [o for c in calls for o in c.code_interpreter.outputs]
    assert outputs and all(o.type == "logs" and o.logs for o in outputs), calls


def test_file_search_searches(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="facts")
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=(
        "launch.md", io.BytesIO(b"# Launch\n\nThe launch code of the Zephyr rocket is 4417. It launches in May.\n")))
    assistant = client.beta.assistants.create(
        model=MODEL, tools=[{"type": "file_search"}], temperature=0, instructions=SYSTEM,
        tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content":
                                                   "What is the launch code of the Zephyr rocket? Respond only with "
                                                   "a <tool_call>."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice={"type": "file_search"}, max_completion_tokens=256,
                                                   poll_interval_ms=100, timeout=300)
    run = answer_calls(client, run)
    assert run.status == "completed", (run.status, run.last_error, run.incomplete_details)
    assert_usage(run)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    searches = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls
                if c.type == "file_search"]
    assert searches and steps[0].status == "completed"
    results = searches[0].file_search.results
    assert results and results[0].file_name == "launch.md" and results[0].score > 0


def test_cancel_mid_stream(client: openai.OpenAI, llama_server: str) -> None:
    assistant = client.beta.assistants.create(model=MODEL, instructions="You are a storyteller.", temperature=0.7)
    thread = client.beta.threads.create(messages=[{"role": "user", "content":
                                                   "Write a very long story about a dragon and a knight."}])
    began = time.monotonic()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                client.beta.threads.runs.cancel(stream.current_run.id, thread_id=thread.id)  # type: ignore[union-attr]
                break
    deadline = time.monotonic() + 60
    while (run := client.beta.threads.runs.retrieve(stream.current_run.id, thread_id=thread.id)).status \
            not in ("cancelled", "completed", "failed") and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.1)
    assert run.status == "cancelled" and time.monotonic() - began < 60
    # Nothing of the interrupted answer is kept.
    assert [m.role for m in client.beta.threads.messages.list(thread.id).data] == ["user"]
    # The worker dropped the stream, and llama-server stopped generating: every slot is idle again.
    slots_url = llama_server.removesuffix("/v1") + "/slots"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(slots_url, timeout=5) as r:
            if not any(s.get("is_processing") for s in json.load(r)):
                break
        time.sleep(0.2)
    else:
        raise AssertionError("llama-server still generating after the cancel")


def test_token_limit_makes_the_run_incomplete(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL, temperature=0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content":
                                                   "Write a very long story about a dragon and a knight."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   max_completion_tokens=256, poll_interval_ms=100, timeout=300)
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage.completion_tokens == 256
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_tokens"


def test_long_threads_are_truncated(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL, temperature=0)
    filler = "The quick brown fox jumps over the lazy dog. " * 60
    thread = client.beta.threads.create(messages=[
        *({"role": "user", "content": f"Note {i}: {filler}"} for i in range(5)),
        {"role": "user", "content": "Say hello."}])
    short = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                     truncation_strategy={"type": "last_messages",
                                                                          "last_messages": 1},
                                                     max_completion_tokens=256, poll_interval_ms=100, timeout=300)
    assert short.status in ("completed", "incomplete")
    assert_usage(short)
    client.beta.threads.messages.create(thread.id, role="user", content="Say hello.")
    full = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                    max_completion_tokens=256, poll_interval_ms=100, timeout=300)
    assert full.status in ("completed", "incomplete")
    # The server counted the tokens: five notes of ~600 tokens fit the 4,096-token window, and were sent.
    assert short.usage.prompt_tokens < 100 < 2500 < full.usage.prompt_tokens


def test_closed_connections_cost_no_failed_call(stack: Stack, client: openai.OpenAI) -> None:
    """llama-server closes its connection after each streamed answer though it said keep-alive; the next call
    from the same worker process must not fail (nor wait for a retry) because of it."""
    before = httpx.get(stack.worker_metrics_url).text
    assistant = client.beta.assistants.create(model=MODEL, instructions="Answer in one word.", temperature=0)
    began = time.monotonic()
    for i in range(8):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Say the number {i}."}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                       max_completion_tokens=256, poll_interval_ms=50, timeout=300)
        assert run.status in ("completed", "incomplete"), run.last_error
        assert_usage(run)
    after = httpx.get(stack.worker_metrics_url).text
    for outcome in ("server_error", "invalid_prompt"):
        labels = {"model": MODEL, "outcome": outcome}
        assert (sample(after, "assistants_model_request_duration_seconds_count", **labels) or 0) == \
            (sample(before, "assistants_model_request_duration_seconds_count", **labels) or 0), outcome
    assert time.monotonic() - began < 300
    assert (sample(after, "assistants_model_usage_estimated_total", model=MODEL) or 0) == 0  # it sends usage



def test_models_lists_the_routes(client: openai.OpenAI) -> None:
    assert "smollm2-llama-cpp-python" in {m.id for m in client.models.list()}


def test_its_refusals_read_as_invalid_prompts(llama_server: str) -> None:
    """llama-server's own error bodies, read as the engine reads upstream errors: an image for a text-only model
    (a 500) and a prompt longer than a slot's context (a 400) are `invalid_prompt`, in one short line."""
    from worker.upstream_errors import http_error

    direct = openai.OpenAI(base_url=llama_server, api_key="none", max_retries=0)
    image = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    too_long = "word " * 6000
    errors = []
    for content in (image, too_long):
        try:
            direct.chat.completions.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": content}])
        except openai.APIStatusError as exc:
            errors.append((exc.status_code, http_error(exc.status_code, exc.body)))
        else:
            raise AssertionError(f"the server took {str(content)[:40]}")
    (image_status, image_err), (long_status, long_err) = errors
    assert image_status == 500 and image_err.code == "invalid_prompt" and not image_err.transient
    assert "image input is not supported" in image_err.message
    assert long_status == 400 and long_err.code == "invalid_prompt"
    assert "does not fit the model's context (4096 tokens)" in long_err.message
    assert all("\n" not in e.message and len(e.message) < 400 for _, e in errors)
