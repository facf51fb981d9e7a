"""Runs in the v1 shape through openai==1.20.0: polling and streaming helpers, function calling, steps."""

import json
import uuid

import openai
from openai import AssistantEventHandler

from tests.model_server import ScriptedModel

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def tag() -> str:
    return f"v{uuid.uuid4().hex[:10]}"


def test_v1_run_with_retrieval_assistant(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"text": "x = 1"})
    f = client.files.create(file=("notes.txt", b"3x + 11 = 14"), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4-1106-preview", name="Math Tutor",
                                              instructions="You are a personal math tutor.",
                                              tools=[{"type": "retrieval"}], file_ids=[f.id])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Solve it {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "completed" and run.file_ids == [f.id] and run.tools[0].type == "retrieval"
    assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "x = 1"
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation" and step.status == "completed"


def test_v1_function_calling_and_streaming(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]},
                 {"text": "Cold in Oslo."})
    assistant = client.beta.assistants.create(model="gpt-4", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    texts: list[str] = []

    class Handler(AssistantEventHandler):
        def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def, override]
            texts.append(delta.value)

    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "-5C"}],
            event_handler=Handler()) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed" and "".join(texts) == "Cold in Oslo."
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].function.output == "-5C"


def test_v1_create_thread_and_run_stream(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = tag()
    model.script(word, {"text": "streamed in v1"})
    assistant = client.beta.assistants.create(model="gpt-4")
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]}) as stream:
        names = [e.event for e in stream]
        messages = stream.get_final_messages()
    assert names[0] == "thread.created" and names[-1] == "thread.run.completed"
    assert messages[0].content[0].text.value == "streamed in v1" and messages[0].file_ids == []
