"""The quirkier second backend: llama-cpp-python's own server (SmolLM2, chatml-function-calling), routed by model
name. It repeats the call's id and name in every streamed tool-call delta, sends no usage in streams, answers an
assistant tool-call message with `content: null` with a 500, streams an empty body for tools with tool_choice
auto, and forces a named tool_choice itself (by grammar)."""

import json

import openai
from openai import AssistantEventHandler

from tests.backends.test_llama_server import ASK_WEATHER, NAMED, SYSTEM, answer_calls, assert_usage, weather_assistant

MODEL = "smollm2-llama-cpp-python"


def test_forced_call_streamed_then_answered(client: openai.OpenAI) -> None:
    names: list[str] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def, override]
            names.append(tool_call.function.name)

    with client.beta.threads.create_and_run_stream(
            assistant_id=weather_assistant(client, MODEL),
            thread={"messages": [{"role": "user", "content": ASK_WEATHER}]},
            tool_choice=NAMED, max_completion_tokens=256, event_handler=Handler()) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action", (run.status, run.last_error, run.incomplete_details)
    calls = run.required_action.submit_tool_outputs.tool_calls
    # Once, not `getCurrentWeathergetCurrentWeather…`: the name is repeated in every delta by this server.
    assert [c.function.name for c in calls] == ["getCurrentWeather"] * len(calls) and names == [
        "getCurrentWeather"] * len(calls)
    assert all(isinstance(json.loads(c.function.arguments), dict) for c in calls)
    assert_usage(run)  # estimated: this server sends none in streams
    # The follow-up carries the assistant's tool-call message, which this server refuses with content null. After
    # it the model chooses (tool_choice auto): this one tends to call the tool again, so the run may still be
    # asking after a few rounds; what matters is that every follow-up was taken.
    done = answer_calls(client, run)
    assert done.status in ("completed", "requires_action", "incomplete"), (done.status, done.last_error)
    assert_usage(done)
    assert done.usage.prompt_tokens > run.usage.prompt_tokens


def test_plain_reply_with_tools_offered(client: openai.OpenAI) -> None:
    """Tools with tool_choice auto: this server streams an empty body, so the engine asks without streaming."""
    assistant = client.beta.assistants.create(model=MODEL, instructions=SYSTEM, temperature=0,
                                              tools=[{"type": "code_interpreter"}])
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "Say hello to me."}]}) as stream:
        stream.until_done()
        run = stream.get_final_run()
    run = answer_calls(client, run)
    assert run.status in ("completed", "incomplete"), (run.status, run.last_error)
    assert_usage(run)
    reply = client.beta.threads.messages.list(run.thread_id).data[0]
    assert reply.role == "assistant" and reply.content[0].text.value.strip()


def test_plain_reply_polled(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model=MODEL, instructions="You are a helpful assistant.",
                                              temperature=0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the capital of France?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   max_completion_tokens=256, poll_interval_ms=100, timeout=300)
    assert run.status in ("completed", "incomplete"), run.last_error
    assert_usage(run)


def test_its_validation_500_reads_as_an_invalid_prompt(llama_cpp_python_server: str) -> None:
    """What it answers an assistant tool-call message with `content: null` (which the engine no longer sends), read
    as the engine reads upstream errors: `invalid_prompt`, not retried, one short line."""
    from worker.upstream_errors import http_error

    direct = openai.OpenAI(base_url=llama_cpp_python_server, api_key="none", max_retries=0)
    call = {"id": "call_1", "type": "function", "function": {"name": "getCurrentWeather", "arguments": "{}"}}
    try:
        direct.chat.completions.create(model="smollm2", max_tokens=8, messages=[
            {"role": "user", "content": "weather?"}, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])
    except openai.APIStatusError as exc:
        assert exc.status_code == 500 and "validation error" in str(exc.body)
        err = http_error(exc.status_code, exc.body)
    else:
        raise AssertionError("the server took content null: this quirk is gone")
    assert err.code == "invalid_prompt" and not err.transient
    assert err.message.startswith("The model server refused the request: validation error") and \
        "\n" not in err.message and len(err.message) < 400
