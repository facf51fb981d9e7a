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
from functools import lru_cache
from typing import Any

from sqlalchemy import text

from sandbox.container import Result, Sandbox
from sandbox.pool import Pool
from shared import events, metrics
from shared.blobstore import from_settings
from shared.ids import new_id, now
from shared.models import File, RunStep
from worker import store

log = logging.getLogger("worker.code")

NAME = "code_interpreter"
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


def step_entry(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "code_interpreter",
            "code_interpreter": {"input": _code_of(arguments), "outputs": []}}


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


class CodeRunner:
    """The code calls of one step, run one after another in the thread's session (opened on first use)."""

    def __init__(self, run: Any, files: list[Any]) -> None:
        self.run, self.files = run, files
        self.pool = _pool()
        self.box: Sandbox | None = None

    def open(self) -> None:
        """Raises AtCapacity when the thread needs a new session and none is free."""
        box, new = self.pool.session(self.run.thread_id)
        if new and self.files:  # a fresh session starts with the files the run may use
            blobs = from_settings()
            box.put_files({f.filename: b"".join(blobs.read(f.blob_key)) for f in self.files})
        self.box = box

    def busy(self, call: dict[str, Any]) -> dict[str, Any]:
        s = self.pool.settings
        logs = BUSY.format(cap=s.sandbox_max_sessions, wait=s.sandbox_queue_seconds)
        return {**call, "code_interpreter": {**call["code_interpreter"], "outputs": [{"type": "logs", "logs": logs}]}}

    def call(self, call: dict[str, Any]) -> dict[str, Any]:
        if self.box is None:
            self.open()
        assert self.box is not None
        result = self.box.run(call["code_interpreter"]["input"])
        image_ids: list[str] = []
        written: dict[str, str] = {}
        if result.images or result.files:
            with store.begin() as conn:
                for png in result.images:
                    image_ids.append(save_file(conn, self.run.project_id, "image.png", base64.b64decode(png)))
                for path in result.files:
                    written[path] = save_file(conn, self.run.project_id, path.rsplit("/", 1)[-1],
                                              self.box.get_file(path))
        out = {**call, "code_interpreter": {**call["code_interpreter"], "outputs": outputs(result, image_ids)}}
        if written:
            out["_files"] = written  # private: the reply's sandbox links are annotated from it
        if result.reset:  # the next call (or run) starts a fresh session
            self.pool.end(self.run.thread_id)
            self.box = None
        return out

    def close(self) -> None:
        if self.box is not None and self.box.alive:
            self.box.detach()
        self.pool.touch(self.run.thread_id)


def files_for(conn: Any, run: Any) -> list[Any]:
    """The files a run's code may see in /mnt/data."""
    return list(conn.execute(_FILES, {"project_id": run.project_id, "thread_id": run.thread_id,
                                      "run_files": list(run.file_ids)}).all())


def end_session(thread_id: str) -> None:
    _pool().end(thread_id)


def maintain() -> dict[str, Any]:
    """Beat, every minute: end sessions past their lifetimes (and dead ones), keep the warm pool filled."""
    pool = _pool()
    done = pool.maintain(pool.settings.sandbox_pool_size)
    metrics.SANDBOX_WARM.set(len(pool.free()))
    return done
