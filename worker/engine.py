"""The run engine: one task advances one run by one step.

A step is read -> act -> commit-if-still-current. The task carries the run's `step_seq`; the final write is a
compare-and-set on it (shared/runflow.py), applying the state machine's decision and bumping it. So a redelivered
task, a task overtaken by a cancel, or a second worker racing the first all end as no-ops, and nothing a step
produces (message, run step) can be written twice. Ids of what a step creates derive from (run, step_seq), so a
redone step announces the same ids to streaming clients.

No database connection is held while the model answers: the step reads in one short transaction, streams (for
seconds or minutes), then writes in another. A gevent worker runs hundreds of these at once on a few connections.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from shared import dispatch, events, logs, runflow
from shared.config import get_settings
from shared.dispatch import Task
from shared.ids import now
from shared.models import Run, RunStep
from shared.runstate import TERMINAL, Event, Status
from worker import inflight, model, prompt, reply, retrieval, run_request, store, toolcalls
from worker.failures import PASSED_ON, RETRYABLE, Interrupted, fail_unexpectedly
from worker.inflight import TRACKER
from worker.live import PUBLISH_ERRORS, LiveStep
from worker.outcome import Outcome, commit
from worker.publisher import PUBLISHER

log = logging.getLogger("worker.engine")

INDEXING_POLL_SECONDS = 1.0


@dataclass
class Turn:
    """What a model step reads before calling the model."""

    run: Run
    history: list[store.Said] = field(default_factory=list)
    steps: list[RunStep] = field(default_factory=list)
    indexing: int = 0  # files in the run's file_search scope still being indexed


def control_event(run: Run, at: int) -> Event | None:
    """What a worker taking up `run` must do before anything else (pure): confirm a cancel, expire it, start it."""
    status = Status(run.status)
    if status == Status.CANCELLING:
        return Event.CANCEL_DONE
    if run.expires_at is not None and at >= run.expires_at and status in (Status.QUEUED, Status.IN_PROGRESS,
                                                                           Status.REQUIRES_ACTION):
        return Event.EXPIRE
    if status == Status.QUEUED:
        return Event.START
    return None


def advance(run_id: str, seq: int) -> None:
    """Take `run_id` one step further if it is still at `seq`."""
    r = events.shared_client()
    with store.begin() as conn:
        run = store.load_run(conn, run_id)
        if run is None or run.step_seq != seq or Status(run.status) in TERMINAL:
            return  # stale, redelivered or overtaken: someone already moved this run on
        logs.bind_ids(run.thread_id)
        event = control_event(run, now())
        # A run taken up for the first time has no steps yet (one query fewer); one queued again after tool
        # outputs has.
        first_start = event == Event.START and run.started_at is None
        applied = runflow.apply(conn, run, event) if event is not None else None
        if event is not None and applied is None:
            return  # raced: another task or the API changed the run meanwhile
        if applied is not None:
            run = applied.run
        turn = _read_turn(conn, run, fresh=first_start) if run.status == Status.IN_PROGRESS else None
    # Committed: from here on, the step's token is run.step_seq (a START moved it on).
    try:
        dispatch.after_commit(r, run.id, applied)
        if turn is not None:
            _take_turn(turn)
    except RETRYABLE as exc:
        raise Interrupted(f"{exc.__class__.__name__}: {exc}", seq=run.step_seq) from exc
    except inflight.Duplicate:
        log.info("run %s: step %d is being run by another task", run.id, run.step_seq)


def _take_turn(turn: Turn) -> None:
    run = turn.run
    open_step = next((s for s in turn.steps if s.kind == "tool_calls" and s.status == "in_progress"), None)
    if open_step is not None:
        # The turn's tools are still to run (this is the sweep's nudge after their task was lost): run them,
        # not the model.
        calls = open_step.step_details.get("tool_calls", [])
        dispatch.step_task(run.id, run.step_seq, Task.CODE if toolcalls.has_code(calls) else Task.SEARCH)
        return
    if turn.indexing and waits_for_files(run, time.time()):
        # OpenAI's runs waited for the thread's files to be searchable; this waits for every store in scope.
        # The task comes back in a second rather than holding a worker (a cancel or the expiry is seen then);
        # the heartbeat keeps the sweep away.
        inflight.beat([run.id], time.time())
        dispatch.step_task(run.id, run.step_seq, countdown=INDEXING_POLL_SECONDS)
        return
    try:
        _model_step(turn)
    except PASSED_ON:
        raise
    except Exception:
        log.exception("run %s: step failed unexpectedly", run.id)
        fail_unexpectedly(run.id, run.step_seq)
        raise


def waits_for_files(run: Run, at: float) -> bool:
    """Whether a run whose files are still being indexed may wait for them (pure). The bound counts from the
    run's start, once for the whole run: a file that never finishes delays the run's first model call by
    FILE_SEARCH_WAIT_SECONDS, not every call after a search as well."""
    return at - (run.started_at or run.created_at) < get_settings().file_search_wait_seconds


def _read_turn(conn: Any, run: Run, *, fresh: bool) -> Turn:
    """`fresh`: the run has no steps yet."""
    try:
        window = model.context_window(run.model)
    except model.ModelError:  # misconfigured backends: the model call says so, failing the run with the reason
        window = get_settings().llm_default_context_window
    strategy = run.truncation_strategy or {}
    last_n = int(strategy["last_messages"]) if strategy.get("type") == "last_messages" and strategy.get(
        "last_messages") else None
    budget = min(window, run.max_prompt_tokens or window)
    turn = Turn(run=run, steps=[] if fresh else store.run_steps(conn, run.id),
                history=store.recent_messages(conn, run.thread_id, budget=budget, last_n=last_n))
    if retrieval.has_search(run.tools):
        turn.indexing = retrieval.indexing(conn, retrieval.scope(conn, run.assistant_id, run.thread_id))
    return turn


def _model_step(turn: Turn) -> None:
    run = turn.run
    window = model.context_window(run.model)
    reserve = run.max_completion_tokens or min(1024, window // 4)
    built = prompt.build(run, turn.history, turn.steps, window=window, reserve=reserve)
    req = run_request.build(run, built.messages)
    try:
        _stream_and_commit(turn, req)
    finally:
        PUBLISHER.forget(run.id)  # an error met writing this step's deltas concerns no later step


def _stream_and_commit(turn: Turn, req: model.ModelRequest) -> None:
    run, seq = turn.run, turn.run.step_seq
    # The step gives up at the run's expiry (no pool enforces a soft time limit for it); the sweep expires the run.
    with TRACKER.watch(run.id, seq, deadline=float(run.expires_at or time.time() + 600)) as watch:
        live = LiveStep(run, seq, lambda items, ttl: PUBLISHER.send(run.id, items, ttl), watch)
        watch.on_tick = live.flush_due
        try:
            result = model.complete(req, on_text=live.text, on_tool_delta=live.tool_delta,
                                    should_stop=watch.should_stop, on_retry=live.reset)
        except model.Stopped:
            if watch.broken is not None:
                raise Interrupted("Redis failed while streaming the answer") from watch.broken
            # The cancel's own task finishes a cancelled run, the sweep expires an overdue one; an overtaken
            # step's work is moot. Said in the log: a step that stops for no good reason leaves its run to the sweep.
            log.info("run %s: step %d stopped (%s)", run.id, seq, "cancelled" if watch.cancelled else
                     "overtaken" if watch.superseded else "past the run's expiry")
            return
        except model.ModelError as err:
            log.warning("run %s failed: %s", run.id, err.message)
            _deltas_written(live)
            commit(run, Outcome(Event.FAIL, given={"last_error": {"code": err.code, "message": err.message}}))
            return
        live.flush()  # the answer's last words go out before it is announced complete
        _deltas_written(live)
        if watch.broken is not None:
            raise Interrupted("Redis failed while streaming the answer") from watch.broken
    commit(run, reply.decide(run, live, result, turn.steps, now()))


def _deltas_written(live: LiveStep) -> None:
    """Wait until the step's streamed deltas are in Redis: its end, announced next, must not overtake them."""
    try:
        PUBLISHER.written(live.run.id)
    except PUBLISH_ERRORS as exc:
        live.watch.broken = exc


