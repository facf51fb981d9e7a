"""code_interpreter inside runs: how the model is offered it, how its calls are recorded, and the `code`
queue's task that runs them in the thread's sandbox session.

The model sees code_interpreter as a function taking Python code. A model turn that calls it ends with a
tool_calls step in progress and the run still in progress; a task on the `code` queue runs each call in the
thread's session (sandbox/pool.py), records its outputs on the step, and then either asks the client for the
outputs of any function calls of the same turn (requires_action) or hands the run back to the model.
"""

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import select, text

from sandbox.container import Result, Sandbox
from sandbox.pool import AtCapacity, Pool
from shared import events, wire
from shared.blobstore import from_settings
from shared.ids import new_id, now
from shared.models import File, RunStep
from shared.rows import from_row
from shared.rows import table as _table
from shared.runstate import Event
from worker import store

log = logging.getLogger("worker.code")

NAME = "code_interpreter"
EXECUTE_TASK = "assistants.code.execute"
DEFINITION = {"type": "function", "function": {
    "name": NAME,
    "description": "Run Python 3 code in a stateful sandbox (variables and files persist between calls within "
                   "this conversation). Files are in /mnt/data; save files you create there. numpy, pandas, "
                   "matplotlib, scipy and sympy are installed; there is no internet access. Returns what the "
                   "code prints and the value of its last expression.",
    "parameters": {"type": "object", "properties": {"code": {"type": "string", "description": "Python code"}},
                   "required": ["code"]}}}
RESET_NOTE = ("\n[The sandbox session was restarted: variables, imports and files created so far are gone; "
              "files given to the assistant were copied in again.]\n")


def is_code_call(name: str, tools: list[dict[str, Any]]) -> bool:
    return name == NAME and any(t.get("type") == "code_interpreter" for t in tools)


def _code_of(arguments: str) -> str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments  # some models send the code itself rather than JSON
    return str(parsed.get("code", "")) if isinstance(parsed, dict) else str(parsed)


_CODE_KEY = re.compile(r'"code"\s*:\s*"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def partial_code(arguments: str) -> str:
    """The code in a call's arguments as far as they have streamed: the decoded prefix of the JSON string
    value of "code" (or the text itself when the model sends bare code), stopping before a half-sent escape."""
    s = arguments.lstrip()
    if not s.startswith("{"):
        return arguments
    m = _CODE_KEY.search(s)
    if m is None:
        return ""
    out, i = [], m.end()
    while i < len(s) and s[i] != '"':
        if s[i] != "\\":
            out.append(s[i])
            i += 1
            continue
        if i + 1 >= len(s):
            break
        kind = s[i + 1]
        if kind != "u":
            out.append(_ESCAPES.get(kind, kind))
            i += 2
            continue
        if i + 6 > len(s):
            break
        point = int(s[i + 2:i + 6], 16)
        if 0xD800 <= point < 0xDC00:  # a surrogate pair: wait for its second half
            if i + 12 > len(s):
                break
            point = 0x10000 + ((point - 0xD800) << 10) + (int(s[i + 8:i + 12], 16) - 0xDC00)
            i += 6
        out.append(chr(point))
        i += 6
    return "".join(out)


def step_entry(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    if name == NAME:
        return {"id": call_id, "type": "code_interpreter",
                "code_interpreter": {"input": _code_of(arguments), "outputs": []}}
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments, "output": None}}


def enqueue(run_id: str, step_seq: int) -> None:
    from worker.celery_app import app
    from worker.queues import Queue

    app.send_task(EXECUTE_TASK, args=[run_id, step_seq], queue=Queue.CODE.value)


def outputs(result: Result, image_ids: list[str]) -> list[dict[str, Any]]:
    logs = result.logs
    if result.status in ("timeout", "oom", "crashed") and result.error:
        logs += f"\n{result.error['type']}: {result.error['message']}\n"
    if result.reset:
        logs += RESET_NOTE
    out: list[dict[str, Any]] = [{"type": "logs", "logs": logs}] if logs else []
    out += [{"type": "image", "image": {"file_id": fid}} for fid in image_ids]
    return out


def images_of(steps: list[RunStep]) -> list[str]:
    """File ids of the figures this run's code produced, in order."""
    return [o["image"]["file_id"] for s in steps if s.kind == "tool_calls"
            for c in s.step_details.get("tool_calls", []) if c.get("type") == "code_interpreter"
            for o in c["code_interpreter"].get("outputs") or [] if o.get("type") == "image"]


def files_of(steps: list[RunStep]) -> dict[str, str]:
    """`sandbox:/mnt/data/<path>` -> file id, for the files this run's code wrote."""
    return {f"sandbox:/mnt/data/{path}": fid for s in steps if s.kind == "tool_calls"
            for c in s.step_details.get("tool_calls", []) if c.get("type") == "code_interpreter"
            for path, fid in (c.get("_files") or {}).items()}


def annotate(text_value: str, files: dict[str, str]) -> list[dict[str, Any]]:
    """file_path annotations for every sandbox link in the reply that names a file the run's code wrote."""
    out = []
    for link, file_id in files.items():
        start = text_value.find(link)
        while start != -1:
            out.append({"type": "file_path", "text": link, "start_index": start, "end_index": start + len(link),
                        "file_path": {"file_id": file_id}})
            start = text_value.find(link, start + len(link))
    return sorted(out, key=lambda a: a["start_index"])


def save_file(conn: Any, project_id: str, filename: str, data: bytes) -> str:
    """Something the code made becomes a File (purpose assistants_output) the client can download."""
    file_id = new_id("file")
    key = f"{project_id}/{file_id}"
    writer = from_settings().writer(key)
    writer.write(data)
    writer.commit()
    store.add(conn, File(id=file_id, project_id=project_id, created_at=now(), filename=filename,
                         purpose="assistants_output", bytes=len(data), blob_key=key))
    return file_id


@lru_cache
def _pool() -> Pool:
    from sandbox.container import client

    return Pool(client(), events.sync_client())


_FILES = text("SELECT f.id, f.filename, f.blob_key FROM file f WHERE f.project_id = :project_id AND f.id IN ("
              " SELECT unnest(CAST(:run_files AS text[]))"
              " UNION SELECT jsonb_array_elements_text(t.code_interpreter_file_ids) FROM thread t"
              "  WHERE t.id = :thread_id"
              " UNION SELECT a->>'file_id' FROM message m, jsonb_array_elements(m.attachments) a"
              "  WHERE m.thread_id = :thread_id AND a->'tools' @> '[{\"type\": \"code_interpreter\"}]')")


BUSY = ("code_interpreter is busy: all {cap} sandbox sessions are in use and none came free within {wait:.0f} s. "
        "The code did not run; try again later.")
HEARTBEAT_EVERY = 5.0


def execute(engine: Any, run_id: str, seq: int, *, may_wait: bool = False) -> bool:
    """Run the code calls of the run's open tool step in the thread's sandbox, then move the run on.

    False when the thread needs a new session, none is free and `may_wait`: the caller retries later (the run
    stays in progress, heartbeated, meanwhile). Without `may_wait` the model is told the tool is busy."""
    with store.connect() as conn:
        run = store.load_run(conn, run_id)
        if run is None or run.step_seq != seq or run.status != "in_progress":
            return True  # stale or overtaken (cancelled, expired, redone)
        t = _table(RunStep)
        row = conn.execute(select(t).where(t.c.run_id == run_id, t.c.kind == "tool_calls",
                                           t.c.status == "in_progress").order_by(t.c.seq.desc())).first()
        files = conn.execute(_FILES, {"project_id": run.project_id, "thread_id": run.thread_id,
                                      "run_files": list(run.file_ids)}).all()
        store.heartbeat(conn, run_id, time.time())  # the sweep leaves a run alone while its tool runs
        conn.commit()
    if row is None:
        return True
    step = from_row(RunStep, row)
    calls = [dict(c) for c in step.step_details["tool_calls"]]
    pool = _pool()
    blobs = from_settings()

    def open_session() -> Sandbox:
        box, new = pool.session(run.thread_id)
        if new and files:  # a fresh session starts with the files the run may use
            box.put_files({f.filename: b"".join(blobs.read(f.blob_key)) for f in files})
        return box

    box: Sandbox | None
    try:
        box = open_session()
    except AtCapacity:
        if may_wait:
            return False
        settings = pool.settings
        busy = BUSY.format(cap=settings.sandbox_max_sessions, wait=settings.sandbox_queue_seconds)
        for i, call in enumerate(calls):
            if call["type"] == "code_interpreter":
                call["code_interpreter"] = {**call["code_interpreter"], "outputs": [{"type": "logs", "logs": busy}]}
                _publish_outputs(engine, run_id, step.id, i, call)
        _record(engine, run_id, seq, step, calls)
        return True
    with _heartbeat(run_id):
        try:
            for i, call in enumerate(calls):
                if call["type"] != "code_interpreter":
                    continue
                if box is None:
                    box = open_session()
                result = box.run(call["code_interpreter"]["input"])
                image_ids: list[str] = []
                written: dict[str, str] = {}
                if result.images or result.files:
                    with store.connect() as conn:
                        for png in result.images:
                            image_ids.append(save_file(conn, run.project_id, "image.png", base64.b64decode(png)))
                        for path in result.files:
                            written[path] = save_file(conn, run.project_id, path.rsplit("/", 1)[-1],
                                                      box.get_file(path))
                        conn.commit()
                call["code_interpreter"] = {**call["code_interpreter"], "outputs": outputs(result, image_ids)}
                if written:
                    call["_files"] = written  # private: the reply's sandbox links are annotated from it
                _publish_outputs(engine, run_id, step.id, i, call)
                if result.reset:  # the next call (or run) starts a fresh session
                    pool.end(run.thread_id)
                    box = None
        finally:
            if box is not None and box.alive:
                box.detach()
            pool.touch(run.thread_id)
    _record(engine, run_id, seq, step, calls)
    return True


def _publish_outputs(engine: Any, run_id: str, step_id: str, index: int, call: dict[str, Any]) -> None:
    """Streaming clients see each call's outputs as soon as it has run (the step completes after the last)."""
    outs = [{"index": j, **o} for j, o in enumerate(call["code_interpreter"]["outputs"])]
    engine.publish(run_id, [("thread.run.step.delta", {"id": step_id, "object": "thread.run.step.delta", "delta": {
        "step_details": {"type": "tool_calls", "tool_calls": [
            {"index": index, "type": "code_interpreter", "code_interpreter": {"outputs": outs}}]}}})])


@contextmanager
def _heartbeat(run_id: str) -> Iterator[None]:
    """Keep the run's heartbeat fresh while code runs (a call may take SANDBOX_TIMEOUT_SECONDS, a step several
    calls), so the sweep does not take the run for lost."""
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


def end_session(thread_id: str) -> None:
    _pool().end(thread_id)


def maintain() -> dict[str, Any]:
    """Beat, every minute: end sessions past their lifetimes (and dead ones), keep the warm pool filled."""
    pool = _pool()
    gone = pool.reap()
    started = pool.warm(pool.settings.sandbox_pool_size)
    return {"reaped": gone, "warmed": started}


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
            required = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                for c in functions]}}
            if not engine.apply(conn, run, Event.CALLED_FUNCTIONS, required_action=required):
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
