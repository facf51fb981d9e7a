"""Tool calls the server runs itself — code_interpreter and file_search — as one step of a run.

A model turn that calls them ends with a tool_calls step in progress and the run still in progress; a task (on the
`code` queue when there is code to run, else on `runs`) executes each call, streams its outputs, and then `decide`
(pure) says what the step comes to: the client is asked for the outputs of any function calls of the same turn
(requires_action), or the run goes back to the model. No database connection is held while the tools run.
"""

import logging
import time
from typing import Any

import redis
from sqlalchemy import select

from sandbox.pool import AtCapacity
from shared import events, wire
from shared.ids import now
from shared.models import Run, RunStep
from shared.rows import from_row
from shared.rows import table as _table
from shared.runstate import Event, Status
from worker import code_tool, inflight, retrieval, store, toolcalls
from worker.failures import PASSED_ON, fail_unexpectedly
from worker.inflight import TRACKER
from worker.outcome import Outcome, commit

log = logging.getLogger("worker.tools")


def execute(run_id: str, seq: int, *, may_wait: bool = False) -> bool:
    """Run the server-side calls of the run's open tool step, then move the run on.

    False when code needs a new sandbox session, none is free and `may_wait`: the caller retries later (the run
    stays in progress meanwhile). Without `may_wait` the model is told code_interpreter is busy."""
    read = _read(run_id, seq)
    if read is None:
        return True  # stale or overtaken (cancelled, expired, redone)
    run, step, calls, files, stores = read
    try:
        # Watched like a model call: the heartbeat tells the sweep this step is alive (a code call may take
        # SANDBOX_TIMEOUT_SECONDS, a step several calls), and the lease keeps a duplicate task from running it too.
        with TRACKER.watch(run.id, seq, deadline=float(run.expires_at) if run.expires_at else float("inf")):
            done = _run_calls(run, step, calls, files, stores, may_wait)
    except inflight.Duplicate:
        log.info("run %s: its tools are being run by another task", run.id)
        return True
    except PASSED_ON:
        raise
    except Exception:
        log.exception("run %s: tool step failed unexpectedly", run.id)
        fail_unexpectedly(run.id, seq)
        raise
    if not done:
        inflight.beat([run.id], time.time())  # waiting for a sandbox session is not a lost worker
        return False
    commit(run, decide(run, step, calls, now()))
    return True


def _read(run_id: str, seq: int) -> tuple[Run, RunStep, list[dict[str, Any]], list[Any], list[str]] | None:
    with store.begin() as conn:
        run = store.load_run(conn, run_id)
        if run is None or run.step_seq != seq or run.status != Status.IN_PROGRESS:
            return None
        t = _table(RunStep)
        row = conn.execute(select(t).where(t.c.run_id == run_id, t.c.kind == "tool_calls",
                                           t.c.status == "in_progress").order_by(t.c.seq.desc())).first()
        if row is None:
            return None
        step = from_row(RunStep, row)
        calls = [dict(c) for c in step.step_details["tool_calls"]]
        files = code_tool.files_for(conn, run) if toolcalls.has_code(calls) else []
        return run, step, calls, files, retrieval.scope(conn, run.assistant_id, run.thread_id)


def _run_calls(run: Run, step: RunStep, calls: list[dict[str, Any]], files: list[Any], stores: list[str],
               may_wait: bool) -> bool:
    """Run each call in order, filling in its outputs in `calls`; False if a sandbox session is to be waited for."""
    runner = code_tool.CodeRunner(run, files) if toolcalls.has_code(calls) else None
    busy = False
    if runner is not None:
        try:
            runner.open()
        except AtCapacity:
            if may_wait:
                return False
            busy = True
    try:
        for i, call in enumerate(calls):
            if call["type"] == "code_interpreter":
                assert runner is not None
                calls[i] = runner.busy(call) if busy else runner.call(call)
                _publish_outputs(run.id, step.id, i, calls[i])
            elif call["type"] == "file_search":
                with store.begin() as conn:
                    calls[i] = retrieval.run_call(conn, call, project_id=run.project_id, store_ids=stores,
                                                  turn=step.engine_seq, tools=run.tools)
                _publish_outputs(run.id, step.id, i, calls[i])
    finally:
        if runner is not None and not busy:
            runner.close()
    return True


def decide(run: Run, step: RunStep, calls: list[dict[str, Any]], at: int) -> Outcome:
    """What the step's executed calls come to (pure)."""
    details = {"type": "tool_calls", "tool_calls": calls}
    functions = [c for c in calls if c["type"] == "function"]
    if functions:
        # The step stays open until the client submits the function outputs.
        return Outcome(Event.CALLED_FUNCTIONS, given={"required_action": toolcalls.required_action(functions)},
                       step_updates={step.id: {"step_details": details}})
    done = step.model_copy(update={"step_details": details, "status": "completed", "completed_at": at})
    return Outcome(Event.CONTINUE, step_updates={step.id: {"step_details": details, "status": "completed",
                                                           "completed_at": at}},
                   before=[("thread.run.step.completed", wire.step(done))])


def _publish_outputs(run_id: str, step_id: str, index: int, call: dict[str, Any]) -> None:
    """Streaming clients see each call's outputs as soon as it has run (the step completes after the last): a code
    call's outputs, a search's ranking options and results, so what the SDK accumulates equals the stored step.
    List entries carry an `index`, which is how the SDK merges lists in deltas."""
    kind = call["type"]
    if kind == "code_interpreter":
        body = {"outputs": [{"index": j, **o} for j, o in enumerate(call["code_interpreter"]["outputs"])]}
    else:
        found = call["file_search"]
        body = {**found, "results": [{"index": j, **r} for j, r in enumerate(found.get("results") or [])]}
    entry = {"index": index, "type": kind, kind: body}
    try:
        events.publish(events.shared_client(), run_id, [("thread.run.step.delta", {
            "id": step_id, "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}}})])
    except redis.RedisError:  # only a preview: the step's outputs are recorded and announced with it
        log.warning("run %s: a tool output was not streamed", run_id, exc_info=True)
