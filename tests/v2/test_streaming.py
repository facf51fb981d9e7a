"""Streaming runs (Server-Sent Events) through the SDK's helpers, in OpenAI's event names and order."""

import json
import time
import uuid

import httpx
import openai
from openai import AssistantEventHandler

from tests.model_server import ScriptedModel
from tests.stack import Stack
from tests.v2.test_runs import WEATHER

OPENING = ["thread.run.created", "thread.run.queued", "thread.run.in_progress", "thread.run.step.created",
           "thread.run.step.in_progress", "thread.message.created", "thread.message.in_progress"]
CLOSING = ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]


def tag() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


def test_stream_a_run(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"text": "Hello! How can I assist you today?"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    texts: list[str] = []

    class Handler(AssistantEventHandler):
        def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def, override]
            texts.append(delta.value)

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=Handler()) as stream:
        names = [event.event for event in stream]
        final = stream.get_final_run()
        messages = stream.get_final_messages()
    deltas = names.count("thread.message.delta")
    assert names == OPENING + ["thread.message.delta"] * deltas + CLOSING
    # The first token at once, the rest (here all at once from an instant model) coalesced.
    assert 1 <= deltas <= 7 and "".join(texts) == "Hello! How can I assist you today?"
    assert final.status == "completed" and final.usage is not None
    assert messages[0].content[0].text.value == "Hello! How can I assist you today?"
    stored = client.beta.threads.messages.list(thread.id).data[0]
    assert stored.id == messages[0].id and stored.content[0].text.value == "".join(texts)


def test_stream_function_calls_then_submit_outputs_streaming(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "San Francisco, CA"}'}]},
                 {"text": "It is 70 degrees and sunny."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    calls_seen: list[str] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def, override]
            calls_seen.append(tool_call.function.name)

    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]},
            event_handler=Handler()) as stream:
        names = [e.event for e in stream]
        run = stream.get_final_run()
    assert names[:4] == ["thread.created", "thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names[4:6] == ["thread.run.step.created", "thread.run.step.in_progress"]
    assert set(names[6:-1]) == {"thread.run.step.delta"} and names[-1] == "thread.run.requires_action"
    assert calls_seen == ["get_weather"] and run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {"city": "San Francisco, CA"}

    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=run.thread_id, run_id=run.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "70 degrees and sunny."}]) as stream:
        names = [e.event for e in stream]
        final = stream.get_final_run()
    assert names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert names[-3:] == CLOSING and final.status == "completed"


def test_raw_sse_format_and_resume(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"text": "one two three"})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    frames: list[dict[str, str]] = []
    with httpx.stream("POST", f"{stack.base_url}/threads/{thread.id}/runs", headers=headers, timeout=30,
                      json={"assistant_id": assistant.id, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in r.iter_lines():
            if not line:
                frames.append(frame)
                frame = {}
                continue
            field, _, value = line.partition(": ")
            frame[field] = value
    assert frames[-1] == {"id": frames[-1]["id"], "event": "done", "data": "[DONE]"}
    run_id = json.loads(frames[0]["data"])["id"]

    # A client that dropped after the third event resumes from its id and misses nothing.
    resume = f"{stack.base_url}/threads/{thread.id}/runs/{run_id}/events"
    with httpx.stream("GET", resume, headers={**headers, "Last-Event-ID": frames[2]["id"]}, timeout=30) as r:
        rest = [line.removeprefix("event: ") for line in r.iter_lines() if line.startswith("event: ")]
    assert rest == [f["event"] for f in frames[3:]]


def test_a_stream_outlives_a_silent_model(client: openai.OpenAI, model: ScriptedModel) -> None:
    """Nothing happens for a while (a slow model, long code, a sandbox starting under load): the stream waits
    rather than breaking. (redis-py's asyncio client times reads out after 5 s by default, blocking ones too.)"""
    word = tag()
    model.script(word, {"text": "Worth the wait.", "delay": 7})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        final = stream.get_final_run()
        messages = stream.get_final_messages()
    assert final.status == "completed" and messages[0].content[0].text.value == "Worth the wait."


def test_text_streams_coalesced_and_never_held_back(client: openai.OpenAI, model: ScriptedModel) -> None:
    """Tokens go out as one delta per 0.1 s at most (a token each was most of a streamed run's cost), the first at
    once; and text already received goes out even when the model then pauses (it is not held until the next
    token)."""
    word = tag()
    words = [f"w{i}" for i in range(40)]
    model.script(word, {"text": " ".join(words), "chunk_delay": 0.01, "stall": [30, 3.0]})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    arrived: list[tuple[float, str]] = []

    class Handler(AssistantEventHandler):
        def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def, override]
            arrived.append((time.monotonic(), snapshot.value))

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=Handler()) as stream:
        stream.until_done()
        ended = time.monotonic()
    assert arrived[-1][1] == " ".join(words)
    assert 3 <= len(arrived) <= 20, len(arrived)  # 40 tokens over ~0.4 s plus the pause: a handful of deltas
    before_pause = next(t for t, text in arrived if text.endswith("w29"))
    assert ended - before_pause > 2.0  # the 30th word was out before the model's 3 s pause ended
