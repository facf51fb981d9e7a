"""The run engine: one task advances one run by one step.

A step is read -> act -> commit-if-still-current. The task carries the run's `step_seq`; the final write
locks the run row and checks that `step_seq` is unchanged before applying the state machine's decision and
bumping it. So a redelivered task, a task overtaken by a cancel, or a second worker racing the first all
end as no-ops, and nothing a step produces (message, run step) can be written twice. Ids of what a step
creates derive from (run, step_seq), so a redone step announces the same ids to streaming clients.
"""

import hashlib
import logging
import string
import time
from typing import Any

from sqlalchemy import Connection

from shared import events, logs, metrics, wire
from shared.ids import now
from shared.models import Message, Run, RunStep
from shared.runstate import TERMINAL, Effect, Event, Status, transition
from worker import code_tool, model, prompt, retrieval, run_request, server_tools, store

log = logging.getLogger("worker.engine")

_B62 = string.ascii_letters + string.digits
HEARTBEAT_EVERY = 5.0
CANCEL_CHECK_EVERY = 0.2


def step_id(prefix: str, run_id: str, seq: int, what: str) -> str:
    """A stable id for something step `seq` of `run_id` creates."""
    n = int.from_bytes(hashlib.sha256(f"{run_id}:{seq}:{what}".encode()).digest()[:18])
    out = ""
    while len(out) < 24:
        n, r = divmod(n, 62)
        out += _B62[r]
    return prefix + out


class Engine:
    def __init__(self) -> None:
        self.redis = events.sync_client()

    # ---- entry point -------------------------------------------------------------------------------------
    def advance(self, run_id: str, seq: int) -> None:
        with store.connect() as conn:
            run = store.load_run(conn, run_id)
            if run is None or run.step_seq != seq or Status(run.status) in TERMINAL:
                return  # stale, redelivered or overtaken: someone already moved this run on
            logs.bind_ids(run.thread_id)
            status = Status(run.status)
            if status == Status.CANCELLING:
                self.finish(conn, run, Event.CANCEL_DONE, "thread.run.cancelled")
                return
            if run.expires_at is not None and now() >= run.expires_at:
                self.finish(conn, run, Event.EXPIRE, "thread.run.expired")
                return
            announce: list[tuple[str, Any]] = []
            if status == Status.QUEUED:
                if not self.apply(conn, run, Event.START, started_at=run.started_at or now(),
                                 heartbeat_at=time.time()):
                    return
                announce.append(("thread.run.in_progress", wire.run(run)))
            elif status != Status.IN_PROGRESS:
                return  # requires_action: the client acts next
            try:
                self._model_step(conn, run, announce)
            except Exception:
                # A bug or a lost database must not leave the run in progress until it expires: fail it
                # (if it is still ours), then let Celery record the error.
                log.exception("run %s: step failed unexpectedly", run.id)
                conn.rollback()
                current = store.load_run(conn, run.id)
                if current is not None and current.step_seq == run.step_seq and current.status == "in_progress":
                    self.finish(conn, current, Event.FAIL, "thread.run.failed",
                                 last_error={"code": "server_error", "message": "The server had an error while "
                                             "processing this run."})
                raise

    # ---- state changes -----------------------------------------------------------------------------------
    def apply(self, conn: Connection, run: Run, event: Event, **changes: Any) -> bool:
        """Apply `event` if the run is still at the step we read; False if it moved on meanwhile."""
        decision = transition(Status(run.status), event)
        values: dict[str, Any] = {"status": decision.status.value, "step_seq": run.step_seq + 1, **changes}
        t = now()
        fx = decision.effects
        if Effect.STAMP_COMPLETED in fx:
            values["completed_at"] = t
        if Effect.STAMP_FAILED in fx:
            values["failed_at"] = t
        if Effect.STAMP_CANCELLED in fx:
            values["cancelled_at"] = t
        if Effect.CLEAR_EXPIRY in fx:
            values["expires_at"] = None
        if Effect.CLEAR_REQUIRED_ACTION in fx:
            values["required_action"] = None
        if not store.cas_run(conn, run, values):
            conn.rollback()
            return False
        for k, v in values.items():
            setattr(run, k, v)
        if decision.status in TERMINAL:
            metrics.RUNS_FINISHED.labels(decision.status.value).inc()
        if Effect.CLOSE_OPEN_STEPS in fx:
            stamp = {Status.CANCELLED: "cancelled_at", Status.EXPIRED: "expired_at", Status.FAILED: "failed_at"}
            column = stamp.get(decision.status)
            store.close_open_steps(conn, run.id, decision.status.value if column else "completed", column, t)
        return True

    def finish(self, conn: Connection, run: Run, event: Event, announce: str, **changes: Any) -> None:
        if self.apply(conn, run, event, **changes):
            conn.commit()
            # The cancel key is left to expire: the worker still streaming this run's answer polls it to stop
            # (and hang up on the model); deleted here, by the task confirming the cancel, it was never seen.
            self.publish(run.id, [(announce, wire.run(run)), (events.DONE, "[DONE]")])

    def publish(self, run_id: str, items: list[tuple[str, Any]], refresh_ttl: bool = True) -> None:
        events.publish(self.redis, run_id, items, refresh_ttl=refresh_ttl)

    # ---- one model call ----------------------------------------------------------------------------------
    def _model_step(self, conn: Connection, run: Run, announce: list[tuple[str, Any]]) -> None:
        seq = run.step_seq
        history = store.thread_messages(conn, run.thread_id)
        steps = store.run_steps(conn, run.id)
        conn.commit()  # end the transaction before the model call, which can take minutes
        open_step = next((s for s in steps if s.kind == "tool_calls" and s.status == "in_progress"), None)
        if open_step is not None:
            # The turn's tools are still to run (this is the sweep's nudge after their task was lost): run them,
            # not the model.
            server_tools.enqueue(run.id, seq, open_step.step_details.get("tool_calls", []))
            return
        if announce:
            self.publish(run.id, announce)
        window = model.context_window(run.model)
        reserve = run.max_completion_tokens or min(1024, window // 4)
        built = prompt.build(run, history, steps, window=window, reserve=reserve)
        req = run_request.build(run, built.messages)
        live = _LiveStep(self, run, seq)
        try:
            result = model.complete(req, on_text=live.text, on_tool_delta=live.tool_delta,
                                    should_stop=live.should_stop, on_retry=live.reset)
        except model.Stopped:
            return  # cancelled: the cancel's own task finishes the run
        except model.ModelError as err:
            log.warning("run %s failed: %s", run.id, err.message)
            self.finish(conn, run, Event.FAIL, "thread.run.failed",
                         last_error={"code": err.code, "message": err.message})
            return
        self._record(conn, run, seq, result, live, code_tool.images_of(steps), code_tool.files_of(steps),
                     retrieval.sources_of(steps))

    def _record(self, conn: Connection, run: Run, seq: int, result: model.ModelResult, live: "_LiveStep",
                images: list[str], files: dict[str, str], sources: dict[str, dict[str, str]]) -> None:
        """Write what the call produced and move the run on — in one transaction, only if still current."""
        locked = store.load_run(conn, run.id, lock=True)
        if locked is None or locked.step_seq != seq:
            conn.rollback()
            return  # cancelled or redone elsewhere meanwhile: discard this result
        run = locked
        t = now()
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                 "total_tokens": result.prompt_tokens + result.completion_tokens}
        total = run.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        run_usage = {k: total.get(k, 0) + usage[k] for k in usage}
        truncated = result.finish_reason == "length"
        out: list[tuple[str, Any]] = []
        if result.text or not result.tool_calls:
            message = Message(id=live.message_id, project_id=run.project_id, thread_id=run.thread_id,
                              created_at=live.created,
                              role="assistant", assistant_id=run.assistant_id, run_id=run.id,
                              content=_reply_content(result.text, images, files, sources),
                              status="incomplete" if truncated else "completed",
                              completed_at=None if truncated else t, incomplete_at=t if truncated else None,
                              incomplete_details={"reason": "max_tokens"} if truncated else None)
            step = live.message_step(live.created, usage if not result.tool_calls else None)
            step.status, step.completed_at = "completed", t
            store.add(conn, message)
            store.add(conn, step)
            if not live.announced_message:
                out += live.message_opening(live.created)
            out += [("thread.message.completed", wire.message(message)),
                    ("thread.run.step.completed", wire.step(step))]
        if any(server_tools.is_server_call(c.name, run.tools) for c in result.tool_calls):
            # Server-side work first: a task runs the code (in the thread's sandbox) and searches, then either
            # asks for the remaining function outputs or hands the run back to the model.
            entries = [server_tools.step_entry(c.id, c.name, c.arguments, run.tools) for c in result.tool_calls]
            tstep = live.tool_step(live.created, entries, usage)
            store.add(conn, tstep)
            if not live.announced_tools:
                opened = wire.step(tstep)
                out += [("thread.run.step.created", opened), ("thread.run.step.in_progress", opened)]
            if not self.apply(conn, run, Event.CONTINUE, usage=run_usage, heartbeat_at=time.time()):
                return
            conn.commit()
            self.publish(run.id, out)
            server_tools.enqueue(run.id, run.step_seq, entries)
            return
        if result.tool_calls:
            calls = [server_tools.function_entry(c.id, c.name, c.arguments) for c in result.tool_calls]
            tstep = live.tool_step(live.created, calls, usage)
            store.add(conn, tstep)
            if not live.announced_tools:
                opened = wire.step(tstep)
                out += [("thread.run.step.created", opened), ("thread.run.step.in_progress", opened)]
            self.apply(conn, run, Event.CALLED_FUNCTIONS, required_action=server_tools.required_action(calls),
                       usage=run_usage)
            announce = "thread.run.requires_action"
        elif truncated:
            self.apply(conn, run, Event.TRUNCATED, usage=run_usage,
                      incomplete_details={"reason": "max_completion_tokens"})
            announce = "thread.run.incomplete"
        else:
            self.apply(conn, run, Event.REPLIED, usage=run_usage)
            announce = "thread.run.completed"
        conn.commit()
        self.publish(run.id, [*out, (announce, wire.run(run)), (events.DONE, "[DONE]")])


class _LiveStep:
    """What a streaming client sees while the model answers: steps and message announced as their first
    token arrives, then deltas. Nothing here touches the database."""

    def __init__(self, engine: Engine, run: Run, seq: int) -> None:
        self.engine, self.run, self.seq = engine, run, seq
        self.message_id = step_id("msg_", run.id, seq, "message")
        self.announced_message = False
        self.announced_tools = False
        # Server-side calls streamed so far: call index -> characters of its code sent (0 for a search).
        self.streamed: dict[int, int] = {}
        self._last_check = 0.0
        self._last_beat = time.monotonic()
        self.created = now()

    def _step(self, kind: str, details: dict[str, Any], created: int) -> RunStep:
        return RunStep(id=step_id("step_", self.run.id, self.seq, kind), project_id=self.run.project_id,
                       run_id=self.run.id, thread_id=self.run.thread_id, assistant_id=self.run.assistant_id,
                       engine_seq=self.seq, kind=kind, created_at=created, step_details=details)

    def message_step(self, created: int, usage: dict[str, int] | None = None) -> RunStep:
        step = self._step("message_creation", {"type": "message_creation",
                                               "message_creation": {"message_id": self.message_id}}, created)
        step.usage = usage
        return step

    def tool_step(self, created: int, calls: list[dict[str, Any]], usage: dict[str, int] | None = None) -> RunStep:
        step = self._step("tool_calls", {"type": "tool_calls", "tool_calls": calls}, created)
        step.usage = usage
        return step

    def message_opening(self, created: int) -> list[tuple[str, Any]]:
        step = wire.step(self.message_step(created))
        msg = {"id": self.message_id, "object": "thread.message", "created_at": created,
               "assistant_id": self.run.assistant_id, "thread_id": self.run.thread_id, "run_id": self.run.id,
               "status": "in_progress", "incomplete_details": None, "incomplete_at": None, "completed_at": None,
               "role": "assistant", "content": [], "attachments": [], "metadata": {}}
        return [("thread.run.step.created", step), ("thread.run.step.in_progress", step),
                ("thread.message.created", msg), ("thread.message.in_progress", msg)]

    def text(self, piece: str) -> None:
        items = []
        if not self.announced_message:
            self.announced_message = True
            items = self.message_opening(self.created)
        items.append(("thread.message.delta", {"id": self.message_id, "object": "thread.message.delta", "delta": {
            "content": [{"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}]}}))
        self.engine.publish(self.run.id, items, refresh_ttl=len(items) > 1)

    def tool_delta(self, index: int, call: model.ToolCall, piece: str) -> None:
        items: list[tuple[str, Any]] = []
        entry: dict[str, Any] = {"index": index}
        if retrieval.is_search_call(call.name, self.run.tools):
            if index in self.streamed:
                return  # announced with its first piece; the query itself is not part of the step
            self.streamed[index] = 0
            entry.update(id=call.id, type="file_search", file_search={})
        elif code_tool.is_code_call(call.name, self.run.tools):
            # The code streams as it is written: the decoded "code" argument, not the JSON around it.
            code = code_tool.partial_code(call.arguments)
            sent = self.streamed.get(index)
            if sent is not None and len(code) == sent:
                return
            self.streamed[index] = len(code)
            entry.update(type="code_interpreter", code_interpreter={"input": code[sent or 0:]})
            if sent is None:  # first piece of this call: say who it is
                entry["id"] = call.id
                entry["code_interpreter"]["outputs"] = []
        else:
            fn: dict[str, Any] = {"arguments": piece}
            entry.update(type="function", function=fn)
            if piece == call.arguments:  # first piece of this call: say who it is
                entry["id"] = call.id
                fn.update(name=call.name, output=None)
        sid = step_id("step_", self.run.id, self.seq, "tool_calls")
        if not self.announced_tools:
            self.announced_tools = True
            step = wire.step(self.tool_step(self.created, []))
            items += [("thread.run.step.created", step), ("thread.run.step.in_progress", step)]
        items.append(("thread.run.step.delta", {"id": sid, "object": "thread.run.step.delta", "delta": {
            "step_details": {"type": "tool_calls", "tool_calls": [entry]}}}))
        self.engine.publish(self.run.id, items)

    def reset(self) -> None:
        """A retry starts the answer over: clients get the opening events again, which resets what they hold."""
        self.announced_message = self.announced_tools = False
        self.streamed.clear()

    def should_stop(self) -> bool:
        t = time.monotonic()
        if t - self._last_beat >= HEARTBEAT_EVERY:
            self._last_beat = t
            with store.connect() as conn:
                store.heartbeat(conn, self.run.id, time.time())
                conn.commit()
        if t - self._last_check < CANCEL_CHECK_EVERY:
            return False
        self._last_check = t
        return bool(self.engine.redis.exists(events.cancel_key(self.run.id)))


def _reply_content(text_value: str, images: list[str], files: dict[str, str],
                   sources: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Figures the run's code made come first, as OpenAI's code interpreter showed them; sandbox links to files
    the code wrote are annotated with the files' ids, and citation markers with the searched files'."""
    annotations = sorted([*code_tool.annotate(text_value, files), *retrieval.annotate(text_value, sources)],
                         key=lambda a: a["start_index"])
    return [*({"type": "image_file", "image_file": {"file_id": f}} for f in images),
            {"type": "text", "text": {"value": text_value, "annotations": annotations}}]
