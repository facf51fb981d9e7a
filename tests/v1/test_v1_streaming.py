"""Streamed tool calls through openai==1.20.0's streaming helpers (the v1 shape): each call is announced once (the
SDK concatenates the string fields of deltas), a search streams as v1 `retrieval`, and what the
AssistantEventHandler accumulated equals the step as retrieved."""

import copy
import json
import uuid
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.threads.runs import RunStep, RunStepDelta, ToolCall

from tests.model_server import ScriptedModel
from tests.stack import Stack
from tests.v1.test_v1_retrieval import MANUAL, v2_resources, wait_indexed

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[dict[str, Any]] = []
        self.tool_calls_done: list[ToolCall] = []
        self.steps_done: list[RunStep] = []

    def on_run_step_delta(self, delta: RunStepDelta, snapshot: RunStep) -> None:
        details = delta.step_details
        if details is not None and details.type == "tool_calls":
            self.deltas += [tc.model_dump(exclude_unset=True) for tc in details.tool_calls or []]

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        self.tool_calls_done.append(copy.deepcopy(tool_call))

    def on_run_step_done(self, run_step: RunStep) -> None:
        self.steps_done.append(run_step)


def shape(value: Any) -> Any:
    """A step's fields as sent, without the `index` of the deltas the SDK built it from."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_unset=True)
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "index"}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


@pytest.mark.parametrize("opening", [{"empty_first_piece": True}, {}], ids=["empty first piece", "arguments first"])
def test_v1_streamed_calls_accumulate_to_the_stored_step(stack: Stack, client: openai.OpenAI, model: ScriptedModel,
                                                         opening: dict[str, bool]) -> None:
    word = f"v{uuid.uuid4().hex[:10]}"
    manual = client.files.create(file=("manual.txt", MANUAL.encode()), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4", tools=[{"type": "code_interpreter"}, {"type": "retrieval"}, WEATHER], file_ids=[manual.id])
    [store] = v2_resources(stack, f"assistants/{assistant.id}")["file_search"]["vector_store_ids"]  # type: ignore[index]
    wait_indexed(stack, store, manual.id)
    model.script(word, {"tool_calls": [
        {"name": "code_interpreter", "arguments": json.dumps({"code": "print(6 * 7)"})},
        {"name": "file_search", "arguments": json.dumps({"query": "warranty"})},
        {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})},
        {"name": "get_weather", "arguments": json.dumps({"city": "Bergen"})},
    ], "arg_chunk": 4, **opening}, {"text": "Done."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    recorder = Recorder()
    with client.beta.threads.runs.create_and_stream(thread_id=thread.id, assistant_id=assistant.id,
                                                    event_handler=recorder) as stream:
        stream.until_done()
        run = stream.get_final_run()
        [snapshot] = stream.get_final_run_steps()
    assert run.status == "requires_action"
    required = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments) for c in required] == [{"city": "Oslo"}, {"city": "Bergen"}]

    # Each call says who it is in its first delta only.
    by_index: dict[int, list[dict[str, Any]]] = {}
    for d in recorder.deltas:
        by_index.setdefault(d["index"], []).append(d)
    assert [by_index[i][0]["type"] for i in sorted(by_index)] == ["code_interpreter", "retrieval", "function",
                                                                  "function"]
    for deltas in by_index.values():
        assert deltas[0]["id"] and all("id" not in d for d in deltas[1:]), deltas
        assert all(d["type"] == deltas[0]["type"] for d in deltas), deltas
        if deltas[0]["type"] == "function":
            assert deltas[0]["function"]["name"] == "get_weather", deltas
            assert all("name" not in d["function"] for d in deltas[1:]), deltas
        if deltas[0]["type"] == "retrieval":
            assert all(d["retrieval"] == {} for d in deltas), deltas

    [stored] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert shape(snapshot.step_details) == shape(stored.step_details)
    code, search, *functions = snapshot.step_details.tool_calls
    assert code.code_interpreter.outputs[0].logs == "42\n" and search.type == "retrieval"
    assert [(c.id, c.function.name, c.function.arguments) for c in functions] == [
        (c.id, c.function.name, c.function.arguments) for c in required]
    # The handler was last told of each call once it was whole (a code call's outputs and a search's results
    # arrive after the turn's calls, so a call may be "done" twice).
    last_done = {c.id: shape(c) for c in recorder.tool_calls_done}
    assert last_done == {c.id: shape(c) for c in snapshot.step_details.tool_calls}

    recorder = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id, run_id=run.id, event_handler=recorder,
            tool_outputs=[{"tool_call_id": c.id, "output": "rain"} for c in required]) as stream:
        stream.until_done()
        assert stream.get_final_run().status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [shape(s) for s in recorder.steps_done] == [shape(s) for s in steps]
    assert [c.type for c in steps[0].step_details.tool_calls] == ["code_interpreter", "retrieval", "function",
                                                                  "function"]
