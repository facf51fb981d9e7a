"""Streamed tool calls as the SDK accumulates them. The SDK concatenates the string fields of step deltas, so a
call's `id`, `type` and function `name` may come only in its first delta (as in the spec's streaming example);
and what the SDK's AssistantEventHandler holds when a stream ends must equal the step as retrieved — for
function, code_interpreter and file_search calls, one or several in a turn, whether the model opens each call
with an empty arguments piece (as OpenAI's models do) or with the first characters of its arguments."""

import copy
import io
import json
import uuid
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.threads.runs import RunStep, RunStepDelta, ToolCall

from tests.model_server import ScriptedModel
from tests.v2.test_runs import WEATHER

CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HANDBOOK = ("# Zorblax station handbook\n\nThe Zorblax reactor is cooled by liquid helium-3 circulating through the "
            "inner mantle. Coolant pressure must stay between 40 and 45 bar.\n")

# How the model streams a turn's calls.
OPENINGS = {
    "empty first piece": {"empty_first_piece": True},
    "arguments in the first piece": {},
    "empty first pieces, calls interleaved": {"empty_first_piece": True, "interleave_calls": True},
}


def tag() -> str:
    return f"k{uuid.uuid4().hex[:10]}"


class Recorder(AssistantEventHandler):
    """Keeps every tool call delta as sent, and copies of what the SDK handed the handler."""

    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[dict[str, Any]] = []
        self.step_snapshots: dict[str, RunStep] = {}
        self.tool_calls_done: list[ToolCall] = []
        self.steps_done: list[RunStep] = []

    def on_run_step_delta(self, delta: RunStepDelta, snapshot: RunStep) -> None:
        details = delta.step_details
        if details is not None and details.type == "tool_calls":
            self.deltas += [tc.model_dump(exclude_unset=True) for tc in details.tool_calls or []]
        self.step_snapshots[snapshot.id] = copy.deepcopy(snapshot)

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        self.tool_calls_done.append(copy.deepcopy(tool_call))

    def on_run_step_done(self, run_step: RunStep) -> None:
        self.steps_done.append(run_step)


def shape(value: Any) -> Any:
    """A step's fields as sent, without the `index` of the deltas the SDK built it from (it keeps them)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_unset=True)
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "index"}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def assert_announced_once(deltas: list[dict[str, Any]], types: list[str]) -> None:
    """Each call's first delta says who it is (id, type, name); no later delta repeats a string the SDK would
    concatenate onto it."""
    by_index: dict[int, list[dict[str, Any]]] = {}
    for d in deltas:
        by_index.setdefault(d["index"], []).append(d)
    assert sorted(by_index) == list(range(len(types))), deltas
    for i, kind in enumerate(types):
        first, *rest = by_index[i]
        assert first["type"] == kind and first["id"], first
        assert all("id" not in d for d in rest), by_index[i]
        assert all(d.get("type", kind) == kind for d in rest), by_index[i]
        if kind == "function":
            assert first["function"]["name"] and first["function"]["output"] is None, first
            assert all("name" not in d["function"] and "output" not in d["function"] for d in rest), by_index[i]
        elif kind == "code_interpreter":
            assert first["code_interpreter"]["outputs"] == [], first
        else:
            assert first["file_search"] == {}, first


@pytest.mark.parametrize("calls", [1, 3])
@pytest.mark.parametrize("opening", list(OPENINGS))
def test_streamed_function_calls_name_each_call_once(client: openai.OpenAI, model: ScriptedModel, opening: str,
                                                     calls: int) -> None:
    """The issue's case: POST /threads/runs with stream, the model calling functions. Every SDK user streaming a
    call accumulated `get_weatherget_weather` and `call_Xcall_X` when the first delta's empty arguments made the
    second piece look like a first one."""
    word = tag()
    wanted = [("get_weather", {"city": "Paris"}), ("get_time", {"city": "San Francisco, CA"}),
              ("get_weather", {"city": "Zoë 😀 \"quoted\""})][:calls]
    model.script(word, {"tool_calls": [{"name": n, "arguments": json.dumps(a)} for n, a in wanted], "arg_chunk": 5,
                        **OPENINGS[opening]})
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER, CLOCK])
    recorder = Recorder()
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": word}]},
            event_handler=recorder) as stream:
        stream.until_done()
        run = stream.get_final_run()
        [snapshot] = stream.get_final_run_steps()
    assert run.status == "requires_action"
    required = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in required] == wanted
    assert_announced_once(recorder.deltas, ["function"] * calls)
    assert len(recorder.deltas) > 2 * calls  # the arguments streamed in pieces

    # What the SDK accumulated is the step as stored, and names the calls the run asks outputs for.
    [stored] = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
    assert shape(snapshot.step_details) == shape(stored.step_details)
    assert shape(recorder.step_snapshots[stored.id]) == shape(snapshot)
    assert [(c.id, c.function.name, c.function.arguments) for c in snapshot.step_details.tool_calls] == [
        (c.id, c.function.name, c.function.arguments) for c in required]
    if "interleaved" not in opening:  # the handler's created/done callbacks assume one call after the other
        assert [(c.id, c.function.name, c.function.arguments) for c in recorder.tool_calls_done] == [
            (c.id, c.function.name, c.function.arguments) for c in required]

    # The step completes with the outputs once they are submitted.
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=run.thread_id, run_id=run.id, event_handler=Recorder(),
            tool_outputs=[{"tool_call_id": c.id, "output": f"out {i}"} for i, c in enumerate(required)]) as stream:
        stream.until_done()
        assert stream.get_final_run().status == "completed"
    done = client.beta.threads.runs.steps.retrieve(stored.id, thread_id=run.thread_id, run_id=run.id)
    assert [(c.id, c.function.name, c.function.output) for c in done.step_details.tool_calls] == [
        (c.id, c.function.name, f"out {i}") for i, c in enumerate(required)]


@pytest.mark.parametrize("opening", list(OPENINGS))
def test_streamed_server_and_function_calls_accumulate_to_the_stored_step(
        client: openai.OpenAI, model: ScriptedModel, opening: str) -> None:
    """Code, a search and a function in one turn: the code streams as it is written and its outputs when it has
    run, the search is announced and then its results, and the SDK's snapshot ends equal to the stored step."""
    word = tag()
    handbook = client.files.create(file=("handbook.md", io.BytesIO(HANDBOOK.encode())), purpose="assistants").id
    vs = client.vector_stores.create(name="handbook", file_ids=[handbook])
    assert client.vector_stores.files.poll(handbook, vector_store_id=vs.id, poll_interval_ms=100).status == \
        "completed"
    model.script(word, {"tool_calls": [
        {"name": "code_interpreter", "arguments": json.dumps({"code": 'print(6 * 7)\nprint("née")'})},
        {"name": "file_search", "arguments": json.dumps({"query": "reactor coolant pressure"})},
        {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})},
        {"name": "code_interpreter", "arguments": json.dumps({"code": "print('second')"})},
    ], "arg_chunk": 4, **OPENINGS[opening]}, {"text": "All done."})
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "code_interpreter"}, {"type": "file_search"}, WEATHER],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    recorder = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=recorder) as stream:
        stream.until_done()
        run = stream.get_final_run()
        [snapshot] = stream.get_final_run_steps()
    assert run.status == "requires_action"
    [required] = run.required_action.submit_tool_outputs.tool_calls
    assert_announced_once(recorder.deltas, ["code_interpreter", "file_search", "function", "code_interpreter"])

    [stored] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert shape(snapshot.step_details) == shape(stored.step_details)
    # The handler was last told of each call once it was whole (a code call's outputs and a search's results
    # arrive after the turn's calls, so a call may be "done" twice).
    last_done = {c.id: shape(c) for c in recorder.tool_calls_done}
    assert last_done == {c.id: shape(c) for c in snapshot.step_details.tool_calls}
    code, search, function, second = snapshot.step_details.tool_calls
    assert code.code_interpreter.input == 'print(6 * 7)\nprint("née")'
    assert [o.logs for o in code.code_interpreter.outputs] == ["42\nnée\n"]
    assert [o.logs for o in second.code_interpreter.outputs] == ["second\n"]
    assert [r.file_id for r in search.file_search.results or []] == [handbook]
    assert (function.id, function.function.name, function.function.arguments) == (
        required.id, "get_weather", '{"city": "Oslo"}')

    recorder = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id, run_id=run.id, event_handler=recorder,
            tool_outputs=[{"tool_call_id": required.id, "output": "rain"}]) as stream:
        stream.until_done()
        assert stream.get_final_run().status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    # The completed step the handler was given is the step as retrieved.
    assert [shape(s) for s in recorder.steps_done] == [shape(s) for s in steps]
    assert steps[0].step_details.tool_calls[2].function.output == "rain"
