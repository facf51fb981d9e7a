"""A step first decides, then does: the decisions, checked without a stack."""

from typing import Any

import pytest

from shared.config import get_settings
from shared.dispatch import Task
from shared.models import Run, RunStep
from shared.runflow import Applied
from shared.runstate import Event, plan
from worker import engine, reply, server_tools
from worker.inflight import Watch, mark_superseded
from worker.live import LiveStep
from worker.model import ModelResult, ToolCall

FN = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


def a_run(tools: list[dict[str, Any]] | None = None, **kw: Any) -> Run:
    fields: dict[str, Any] = {"id": "run_1", "project_id": "p", "thread_id": "thread_1", "assistant_id": "asst_1",
                              "created_at": 1, "status": "in_progress", "step_seq": 3, "model": "m",
                              "tools": tools or [], "file_ids": [], "parallel_tool_calls": True, "expires_at": 601}
    return Run(**{**fields, **kw})


def live_for(run: Run) -> tuple[LiveStep, list[list[tuple[str, Any]]]]:
    sent: list[list[tuple[str, Any]]] = []
    return LiveStep(run, run.step_seq, lambda items, _ttl: sent.append(items), Watch(run.id, run.step_seq, 1e12)), sent


def names(items: list[tuple[str, Any]]) -> list[str]:
    return [n for n, _ in items]


def test_a_text_answer_completes_the_run_with_its_message() -> None:
    run = a_run(usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    live, _ = live_for(run)
    out = reply.decide(run, live, ModelResult(text="Hi", prompt_tokens=5, completion_tokens=2), [], at=10)
    assert out.event == Event.REPLIED
    assert out.given == {"usage": {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}}
    message, step = out.inserts
    assert message.id == live.message_id and message.content[-1]["text"]["value"] == "Hi"
    assert step.kind == "message_creation" and step.status == "completed" and step.usage["total_tokens"] == 7
    # Nothing was streamed (a non-streaming upstream): the opening events come first.
    assert names(out.before) == ["thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
                                 "thread.message.in_progress", "thread.message.completed",
                                 "thread.run.step.completed"]


def test_a_streamed_answer_is_not_opened_twice() -> None:
    run = a_run()
    live, sent = live_for(run)
    live.text("Hi")
    assert names(sent[0])[:4] == ["thread.run.step.created", "thread.run.step.in_progress",
                                  "thread.message.created", "thread.message.in_progress"]
    out = reply.decide(run, live, ModelResult(text="Hi"), [], at=10)
    assert names(out.before) == ["thread.message.completed", "thread.run.step.completed"]


def test_truncated_answer_leaves_the_run_incomplete() -> None:
    run = a_run()
    live, _ = live_for(run)
    out = reply.decide(run, live, ModelResult(text="long", finish_reason="length"), [], at=10)
    assert out.event == Event.TRUNCATED and out.given["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert out.inserts[0].status == "incomplete" and out.inserts[0].incomplete_details == {"reason": "max_tokens"}


def test_function_calls_ask_the_client() -> None:
    run = a_run([FN])
    live, _ = live_for(run)
    result = ModelResult(tool_calls=[ToolCall("call_a", "get_weather", '{"city": "Paris"}')])
    out = reply.decide(run, live, result, [], at=10)
    assert out.event == Event.CALLED_FUNCTIONS
    [call] = out.given["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call == {"id": "call_a", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    [step] = out.inserts
    assert step.kind == "tool_calls" and step.status == "in_progress"


def test_server_calls_go_to_the_tool_task_with_the_functions_of_the_same_turn() -> None:
    run = a_run([FN, {"type": "code_interpreter"}])
    live, _ = live_for(run)
    result = ModelResult(tool_calls=[ToolCall("c1", "code_interpreter", '{"code": "1+1"}'),
                                     ToolCall("c2", "get_weather", "{}")])
    out = reply.decide(run, live, result, [], at=10)
    assert out.event == Event.CONTINUE and out.next_task == Task.CODE
    assert [c["type"] for c in out.inserts[0].step_details["tool_calls"]] == ["code_interpreter", "function"]
    run = a_run([{"type": "file_search"}])
    out = reply.decide(run, live_for(run)[0], ModelResult(tool_calls=[ToolCall("c3", "file_search", "{}")]), [],
                       at=10)
    assert out.event == Event.CONTINUE and out.next_task == Task.SEARCH


def test_tool_step_outcomes() -> None:
    run = a_run([FN, {"type": "code_interpreter"}])
    step = RunStep(id="step_1", project_id="p", run_id=run.id, thread_id=run.thread_id, assistant_id="a",
                   engine_seq=2, kind="tool_calls", created_at=1, step_details={})
    code = {"id": "c1", "type": "code_interpreter", "code_interpreter": {"input": "1", "outputs": []}}
    done = server_tools.decide(run, step, [code], at=5)
    assert done.event == Event.CONTINUE and done.next_task == Task.ADVANCE
    assert done.step_updates["step_1"]["status"] == "completed"
    assert names(done.before) == ["thread.run.step.completed"]
    fn = {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{}", "output": None}}
    ask = server_tools.decide(run, step, [code, fn], at=5)
    assert ask.event == Event.CALLED_FUNCTIONS and "status" not in ask.step_updates["step_1"]
    assert ask.given["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"] == "c2"


@pytest.mark.parametrize(("status", "expires_at", "event"), [
    ("cancelling", 10, Event.CANCEL_DONE),
    ("queued", 10, Event.EXPIRE),
    ("queued", 1000, Event.START),
    ("in_progress", 10, Event.EXPIRE),
    ("in_progress", 1000, None),
    ("requires_action", 1000, None),
])
def test_what_a_worker_does_first(status: str, expires_at: int, event: Event | None) -> None:
    assert engine.control_event(a_run(status=status, expires_at=expires_at), at=100) == event


def test_files_are_waited_for_once_per_run_up_to_the_bound() -> None:
    bound = get_settings().file_search_wait_seconds
    run = a_run(started_at=1000)
    assert engine.waits_for_files(run, at=1000) and engine.waits_for_files(run, at=1000 + bound - 1)
    assert not engine.waits_for_files(run, at=1000 + bound)
    # A later model call of the same run (after a search, or after submitted outputs: started_at is kept)
    # does not get a wait of its own.
    assert not engine.waits_for_files(run, at=1000 + 3 * bound)


def test_announcements_follow_the_status() -> None:
    run = a_run()
    done = Applied(run.model_copy(update={"status": "completed"}),
                   plan("in_progress", 3, 1, Event.REPLIED, at=2, heartbeat=0))
    assert names(done.announcements()) == ["thread.run.completed", "done"] and done.finished and not done.enqueue
    cont = Applied(run, plan("in_progress", 3, 1, Event.CONTINUE, at=2, heartbeat=0))
    assert cont.announcements() == [] and cont.enqueue


def test_streamed_function_calls_name_themselves_once() -> None:
    """Clients concatenate the string fields of deltas: a call's id and name go in its first delta only, even
    when that delta's arguments are empty (OpenAI's models open a call with an empty piece)."""
    run = a_run([FN])
    live, sent = live_for(run)
    call = ToolCall("call_a", "get_weather")
    for piece in ["", '{"city"', ': "Paris"}']:
        call.arguments += piece
        live.tool_delta(0, call, piece)
    deltas = [d["delta"]["step_details"]["tool_calls"][0] for items in sent for n, d in items
              if n == "thread.run.step.delta"]
    assert [d.get("id") for d in deltas] == ["call_a", None, None]
    assert [d["function"].get("name") for d in deltas] == ["get_weather", None, None]
    assert "".join(d["function"]["arguments"] for d in deltas) == '{"city": "Paris"}'


def test_a_heartbeat_judges_only_the_steps_it_asked_about() -> None:
    # A step registers after its lease request, which yields to the heartbeat loop: the beat's answer cannot
    # know it, and must not stop it (that stopped ~1 run in 300 under load, recovered only by the sweep).
    on_time, moved_on, gone = Watch("run_a", 3, 1e12), Watch("run_b", 3, 1e12), Watch("run_c", 1, 1e12)
    mark_superseded([on_time, moved_on, gone], {"run_a": 3, "run_b": 4})
    assert (on_time.superseded, moved_on.superseded, gone.superseded) == (False, True, True)
