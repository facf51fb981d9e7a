"""What a streaming client sees while the model answers: the message and tool steps announced when their first
token arrives, then deltas. Nothing here touches the database; the step's outcome is committed afterwards.

Ids of what a step creates derive from (run, step_seq), so a redone step announces the same ids. A retry of the
model call starts the answer over: the opening events are sent again, which resets what clients hold.

Text is coalesced: the first token goes out at once, later ones at most every STREAM_FLUSH_SECONDS (0.1) as one
delta. A token each was a Redis write, a relayed event and an SSE frame each — most of a streamed run's cost at
real-model speed — for a difference no reader sees. The in-flight loop flushes what waits (`flush_due`), so a model
pausing mid-answer never holds back text it already sent.
"""

import hashlib
import string
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from shared import wire
from shared.config import get_settings
from shared.ids import now
from shared.models import Run, RunStep
from worker import code_tool, model, retrieval
from worker.inflight import Watch

_B62 = string.ascii_letters + string.digits
# What writing events raises when Redis is away (directly, or as reported by worker/publisher.py).
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, TimeoutError, OSError)
Publish = Callable[[list[tuple[str, Any]], bool], None]


def step_id(prefix: str, run_id: str, seq: int, what: str) -> str:
    """A stable id for something step `seq` of `run_id` creates."""
    n = int.from_bytes(hashlib.sha256(f"{run_id}:{seq}:{what}".encode()).digest()[:18])
    out = ""
    while len(out) < 24:
        n, r = divmod(n, 62)
        out += _B62[r]
    return prefix + out


class LiveStep:
    def __init__(self, run: Run, seq: int, publish: Publish, watch: Watch) -> None:
        self.run, self.seq, self._publish, self.watch = run, seq, publish, watch
        self.message_id = step_id("msg_", run.id, seq, "message")
        self.tools_step_id = step_id("step_", run.id, seq, "tool_calls")
        self.announced_message = False
        self.announced_tools = False
        # Tool calls announced so far, by index: for code, how many characters of its code were sent.
        self.streamed: dict[int, int] = {}
        self.created = now()
        # Text received and not yet sent, and when text was last sent (see the module's docstring).
        self._pending = ""
        self._flushed = 0.0
        self._every = get_settings().stream_flush_seconds
        self._lock = threading.RLock()  # the in-flight loop flushes from its own thread (or greenlet)

    # ---- the rows this step may create (the engine writes them when it commits) -------------------------------
    def _step(self, kind: str, details: dict[str, Any]) -> RunStep:
        return RunStep(id=step_id("step_", self.run.id, self.seq, kind), project_id=self.run.project_id,
                       run_id=self.run.id, thread_id=self.run.thread_id, assistant_id=self.run.assistant_id,
                       engine_seq=self.seq, kind=kind, created_at=self.created, step_details=details)

    def message_step(self, usage: dict[str, int] | None = None) -> RunStep:
        step = self._step("message_creation", {"type": "message_creation",
                                               "message_creation": {"message_id": self.message_id}})
        step.usage = usage
        return step

    def tool_step(self, calls: list[dict[str, Any]], usage: dict[str, int] | None = None) -> RunStep:
        step = self._step("tool_calls", {"type": "tool_calls", "tool_calls": calls})
        step.usage = usage
        return step

    # ---- events ----------------------------------------------------------------------------------------------
    def message_opening(self) -> list[tuple[str, Any]]:
        step = wire.step(self.message_step())
        msg = {"id": self.message_id, "object": "thread.message", "created_at": self.created,
               "assistant_id": self.run.assistant_id, "thread_id": self.run.thread_id, "run_id": self.run.id,
               "status": "in_progress", "incomplete_details": None, "incomplete_at": None, "completed_at": None,
               "role": "assistant", "content": [], "attachments": [], "metadata": {}}
        return [("thread.run.step.created", step), ("thread.run.step.in_progress", step),
                ("thread.message.created", msg), ("thread.message.in_progress", msg)]

    def tools_opening(self) -> list[tuple[str, Any]]:
        step = wire.step(self.tool_step([]))
        return [("thread.run.step.created", step), ("thread.run.step.in_progress", step)]

    # Sending happens under the lock: the in-flight loop flushes from its own thread (or greenlet), and what is
    # handed to the publisher must keep the order the model said it in.

    def text(self, piece: str) -> None:
        with self._lock:
            if self.announced_message:
                self._pending += piece
                if time.monotonic() - self._flushed < self._every:
                    return
                piece, self._pending = self._pending, ""
                items = []
            else:
                self.announced_message = True
                items = self.message_opening()
            self._flushed = time.monotonic()
            items.append(self._text_delta(piece))
            self._send(items, len(items) > 1)

    def flush(self) -> None:
        """Send the text still waiting (before anything else is announced, and when the answer ends)."""
        with self._lock:
            piece, self._pending = self._pending, ""
            self._flushed = time.monotonic()
            if piece:
                self._send([self._text_delta(piece)], False)

    def flush_due(self) -> None:
        """The in-flight loop's call: send waiting text once it has waited a whole period."""
        if self._pending and time.monotonic() - self._flushed >= self._every:
            self.flush()

    def _text_delta(self, piece: str) -> tuple[str, Any]:
        return ("thread.message.delta", {"id": self.message_id, "object": "thread.message.delta", "delta": {
            "content": [{"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}]}})

    def tool_delta(self, index: int, call: model.ToolCall, piece: str) -> None:
        with self._lock:
            self.flush()
            entry = self._tool_entry(index, call, piece)
            if entry is None:
                return
            items: list[tuple[str, Any]] = []
            if not self.announced_tools:
                self.announced_tools = True
                items += self.tools_opening()
            items.append(("thread.run.step.delta", {"id": self.tools_step_id, "object": "thread.run.step.delta",
                                                    "delta": {"step_details": {"type": "tool_calls",
                                                                               "tool_calls": [entry]}}}))
            self._send(items, True)

    def _tool_entry(self, index: int, call: model.ToolCall, piece: str) -> dict[str, Any] | None:
        """One call's delta. Its id, type and name go in its first delta only: clients concatenate the string
        fields of deltas, so repeating them would double them."""
        first = index not in self.streamed
        entry: dict[str, Any] = {"index": index}
        if retrieval.is_search_call(call.name, self.run.tools):
            if not first:
                return None  # announced with its first piece; the query itself is not part of the step
            self.streamed[index] = 0
            return {**entry, "id": call.id, "type": "file_search", "file_search": {}}
        if code_tool.is_code_call(call.name, self.run.tools):
            # The code streams as it is written: the decoded "code" argument, not the JSON around it.
            code = code_tool.partial_code(call.arguments)
            sent = self.streamed.get(index, 0)
            if not first and len(code) == sent:
                return None
            self.streamed[index] = len(code)
            ci: dict[str, Any] = {"input": code[sent:]}
            if first:
                entry["id"] = call.id
                ci["outputs"] = []
            return {**entry, "type": "code_interpreter", "code_interpreter": ci}
        self.streamed[index] = 0
        fn: dict[str, Any] = {"arguments": piece}
        if first:
            entry["id"] = call.id
            fn.update(name=call.name, output=None)
        return {**entry, "type": "function", "function": fn}

    def reset(self) -> None:
        """The model call is being retried: its answer starts over."""
        with self._lock:
            self.announced_message = self.announced_tools = False
            self._pending = ""
        self.streamed.clear()

    def _send(self, items: list[tuple[str, Any]], refresh_ttl: bool) -> None:
        # Redis going away mid-answer is not the model's fault: the step stops and is retried, not failed.
        if self.watch.broken is not None:
            return
        try:
            self._publish(items, refresh_ttl)
        except PUBLISH_ERRORS as exc:
            self.watch.broken = exc
