"""Tool calls the server runs itself — code_interpreter and file_search — as one step of a run.

A model turn that calls them ends with a tool_calls step in progress and the run still in progress; a task (on the
`code` queue when there is code to run, else on `runs`) executes each call, streams its outputs, records them on
the step, and then either asks the client for the outputs of any function calls of the same turn
(requires_action) or hands the run back to the model.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, text

from sandbox.pool import AtCapacity
from shared import events, wire
from shared.ids import now
from shared.models import RunStep
from shared.rows import from_row
from shared.rows import table as _table
from shared.runstate import Event
from worker import code_tool, retrieval, store

log = logging.getLogger("worker.tools")

CODE_TASK = "assistants.code.execute"
SEARCH_TASK = "assistants.search.execute"
HEARTBEAT_EVERY = 5.0


def is_server_call(name: str, tools: list[dict[str, Any]]) -> bool:
    return code_tool.is_code_call(name, tools) or retrieval.is_search_call(name, tools)


def function_entry(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments, "output": None}}


def step_entry(call_id: str, name: str, arguments: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    if code_tool.is_code_call(name, tools):
        return code_tool.step_entry(call_id, arguments)
    if retrieval.is_search_call(name, tools):
        return retrieval.step_entry(call_id, arguments)
    return function_entry(call_id, name, arguments)


def required_action(functions: list[dict[str, Any]]) -> dict[str, Any]:
    """What the client must answer: the turn's function calls (server-side calls are not its business)."""
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
        {"id": c["id"], "type": "function",
         "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
        for c in functions]}}


def enqueue(run_id: str, step_seq: int, calls: list[dict[str, Any]]) -> None:
    from worker.celery_app import app
    from worker.queues import Queue

    if any(c.get("type") == "code_interpreter" for c in calls):
        app.send_task(CODE_TASK, args=[run_id, step_seq], queue=Queue.CODE.value)
    else:
        app.send_task(SEARCH_TASK, args=[run_id, step_seq], queue=Queue.RUNS.value)


_STORES = text("""SELECT a.vector_store_ids AS assistant_stores, t.vector_store_ids AS thread_stores
                  FROM thread t LEFT JOIN assistant a ON a.id = :assistant_id WHERE t.id = :thread_id""")


def execute(engine: Any, run_id: str, seq: int, *, may_wait: bool = False) -> bool:
    """Run the server-side calls of the run's open tool step, then move the run on.

    False when code needs a new sandbox session, none is free and `may_wait`: the caller retries later (the run
    stays in progress, heartbeated, meanwhile). Without `may_wait` the model is told code_interpreter is busy."""
    with store.connect() as conn:
        run = store.load_run(conn, run_id)
        if run is None or run.step_seq != seq or run.status != "in_progress":
            return True  # stale or overtaken (cancelled, expired, redone)
        t = _table(RunStep)
        row = conn.execute(select(t).where(t.c.run_id == run_id, t.c.kind == "tool_calls",
                                           t.c.status == "in_progress").order_by(t.c.seq.desc())).first()
        if row is None:
            return True
        step = from_row(RunStep, row)
        calls = [dict(c) for c in step.step_details["tool_calls"]]
        has_code = any(c["type"] == "code_interpreter" for c in calls)
        files = code_tool.files_for(conn, run) if has_code else []
        scope = conn.execute(_STORES, {"assistant_id": run.assistant_id, "thread_id": run.thread_id}).first()
        store.heartbeat(conn, run_id, time.time())  # the sweep leaves a run alone while its tools run
        conn.commit()
    stores = list(dict.fromkeys([*(scope.assistant_stores or []), *(scope.thread_stores or [])])) if scope else []
    runner = code_tool.CodeRunner(run, files) if has_code else None
    busy = False
    if runner is not None:
        try:
            runner.open()
        except AtCapacity:
            if may_wait:
                return False
            busy = True
    with _heartbeat(run_id):
        try:
            for i, call in enumerate(calls):
                if call["type"] == "code_interpreter":
                    assert runner is not None
                    calls[i] = runner.busy(call) if busy else runner.call(call)
                    _publish_outputs(engine, run_id, step.id, i, calls[i])
                elif call["type"] == "file_search":
                    with store.connect() as conn:
                        calls[i] = retrieval.run_call(conn, call, project_id=run.project_id, store_ids=stores,
                                                      turn=step.engine_seq, tools=run.tools)
                        conn.commit()
                    _publish_outputs(engine, run_id, step.id, i, calls[i])
        finally:
            if runner is not None and not busy:
                runner.close()
    _record(engine, run_id, seq, step, calls)
    return True


def _publish_outputs(engine: Any, run_id: str, step_id: str, index: int, call: dict[str, Any]) -> None:
    """Streaming clients see each call's outputs as soon as it has run (the step completes after the last): a code
    call's outputs, a search's ranking options and results, so what the SDK accumulates equals the stored step.
    List entries carry an `index`, which is how the SDK merges lists in deltas."""
    kind = call["type"]
    if kind == "code_interpreter":
        body = {"outputs": [{"index": j, **o} for j, o in enumerate(call["code_interpreter"]["outputs"])]}
    else:
        found = call["file_search"]
        body = {**found, "results": [{"index": j, **r} for j, r in enumerate(found.get("results") or [])]}
    engine.publish(run_id, [("thread.run.step.delta", {"id": step_id, "object": "thread.run.step.delta", "delta": {
        "step_details": {"type": "tool_calls", "tool_calls": [{"index": index, "type": kind, kind: body}]}}})])


@contextmanager
def _heartbeat(run_id: str) -> Iterator[None]:
    """Keep the run's heartbeat fresh while tools run (a code call may take SANDBOX_TIMEOUT_SECONDS, a step
    several calls), so the sweep does not take the run for lost."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_EVERY):
            try:
                with store.connect() as conn:
                    store.heartbeat(conn, run_id, time.time())
                    conn.commit()
            except Exception:  # a missed beat only risks a harmless nudge
                log.warning("run %s: heartbeat failed", run_id, exc_info=True)

    beater = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join()


def _record(engine: Any, run_id: str, seq: int, step: RunStep, calls: list[dict[str, Any]]) -> None:
    with store.connect() as conn:
        run = store.load_run(conn, run_id, lock=True)
        if run is None or run.step_seq != seq:
            conn.rollback()
            return  # cancelled meanwhile: the outputs are discarded
        functions = [c for c in calls if c["type"] == "function"]
        step.step_details = {"type": "tool_calls", "tool_calls": calls}
        t = _table(RunStep)
        values: dict[str, Any] = {"step_details": step.step_details}
        if not functions:
            step.status, step.completed_at = "completed", now()
            values.update(status="completed", completed_at=step.completed_at)
        conn.execute(t.update().where(t.c.id == step.id).values(**values))
        if functions:
            if not engine.apply(conn, run, Event.CALLED_FUNCTIONS, required_action=required_action(functions)):
                return
            conn.commit()
            engine.publish(run.id, [("thread.run.requires_action", wire.run(run)), (events.DONE, "[DONE]")])
            return
        if not engine.apply(conn, run, Event.CONTINUE):
            return
        conn.commit()
    engine.publish(run.id, [("thread.run.step.completed", wire.step(step))])
    from worker.tasks import advance

    advance.apply_async(args=[run.id, run.step_seq])
