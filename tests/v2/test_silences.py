"""Streams survive silences longer than every timeout in their path: a model thinking before its first token, a
long code_interpreter call. The path's timeouts: the API's Redis socket timeout (10 s), the relay's XREAD BLOCK
(5 s), the keep-alive period (15 s); the SDK's own read timeout is 600 s. Keep-alive comments fill the silence
(a proxy or load balancer would otherwise cut the idle connection)."""

import json
import threading
import uuid

import httpx
import openai
from openai import AssistantEventHandler

from tests.model_server import ScriptedModel
from tests.stack import Stack

SILENCE = 25.0  # longer than every timeout above


def tag() -> str:
    return f"q{uuid.uuid4().hex[:10]}"


def test_a_stream_outlasts_a_long_wait_for_the_first_token(stack: Stack, client: openai.OpenAI,
                                                           model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"text": "Thought about it for a while.", "ttft": SILENCE})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    raw: list[bytes] = []
    texts: list[str] = []

    def watch_raw(run_id: str) -> None:
        """A second client follows the same run over raw HTTP, to see what fills the silence."""
        headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
        with httpx.stream("GET", f"{stack.base_url}/threads/{thread.id}/runs/{run_id}/events", headers=headers,
                          timeout=120) as response:
            raw.extend(response.iter_raw())

    class Handler(AssistantEventHandler):
        def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def, override]
            texts.append(delta.value)

    watcher: threading.Thread | None = None
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=Handler()) as stream:
        for event in stream:
            if event.event == "thread.run.created":
                watcher = threading.Thread(target=watch_raw, args=(event.data.id,))
                watcher.start()
        final = stream.get_final_run()
    assert final.status == "completed"
    assert "".join(texts) == "Thought about it for a while."
    assert watcher is not None
    watcher.join(60)
    body = b"".join(raw)
    assert body.count(b"\n: keep-alive\n") >= 1, body[:500]
    assert b"event: thread.run.completed" in body and body.rstrip().endswith(b"data: [DONE]")


def test_a_stream_outlasts_a_long_code_call(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    code = f"import time\ntime.sleep({SILENCE})\nprint('slept')"
    model.script(word, {"tool_calls": [{"name": "code_interpreter", "arguments": json.dumps({"code": code})}]},
                 {"text": "Done sleeping."})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        names = [event.event for event in stream]
        final = stream.get_final_run()
        steps = stream.get_final_run_steps()
    assert final.status == "completed", final.last_error
    assert names[-1] == "thread.run.completed"
    [tool_step] = [s for s in steps if s.type == "tool_calls"]
    [call] = tool_step.step_details.tool_calls  # type: ignore[union-attr]
    assert call.code_interpreter.outputs[0].logs.strip() == "slept"  # type: ignore[union-attr]
