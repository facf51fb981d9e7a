"""Wire renderings of the objects a run produces — messages, runs and run steps — in either API shape, and of the
vector store files and batches that webhooks report as the API shows them.

Shared by the API (responses) and the workers (streamed events). Events are published in the v2 shape and
turned into v1 by `event_to_v1` when a v1 client streams.
"""

from typing import Any, Literal

from shared.models import Message, Run, RunStep, VectorStoreFile, VectorStoreFileBatch

Version = Literal["v1", "v2"]

# v1 message files were readable by both tools; as v2 attachments they say so explicitly.
V1_FILE_TOOLS = [{"type": "code_interpreter"}, {"type": "file_search"}]


def _tools_v1(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "retrieval"} if t.get("type") == "file_search" else t for t in tools]


def message(m: Message, version: Version = "v2") -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id, "object": "thread.message", "created_at": m.created_at, "thread_id": m.thread_id,
        "status": m.status, "incomplete_details": m.incomplete_details, "completed_at": m.completed_at,
        "incomplete_at": m.incomplete_at, "role": m.role, "content": m.content,
        "assistant_id": m.assistant_id, "run_id": m.run_id, "attachments": m.attachments, "metadata": m.meta or {},
    }
    return message_to_v1(out) if version == "v1" else out


def message_to_v1(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in d.items() if k != "attachments"}
    out["file_ids"] = [a["file_id"] for a in d.get("attachments") or []]
    return out


def run(r: Run, version: Version = "v2") -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id, "object": "thread.run", "created_at": r.created_at, "assistant_id": r.assistant_id,
        "thread_id": r.thread_id, "status": r.status, "started_at": r.started_at, "expires_at": r.expires_at,
        "cancelled_at": r.cancelled_at, "failed_at": r.failed_at, "completed_at": r.completed_at,
        "required_action": r.required_action, "last_error": r.last_error, "model": r.model,
        "instructions": r.instructions, "tools": r.tools, "metadata": r.meta or {},
        "incomplete_details": r.incomplete_details, "usage": r.usage,
        "temperature": 1.0 if r.temperature is None else r.temperature,
        "top_p": 1.0 if r.top_p is None else r.top_p,
        "max_prompt_tokens": r.max_prompt_tokens, "max_completion_tokens": r.max_completion_tokens,
        "truncation_strategy": r.truncation_strategy or {"type": "auto", "last_messages": None},
        "response_format": r.response_format if r.response_format is not None else "auto",
        "tool_choice": r.tool_choice if r.tool_choice is not None else "auto",
        "parallel_tool_calls": r.parallel_tool_calls,
        "_file_ids": r.file_ids,
    }
    return run_to_v1(out) if version == "v1" else _public(out)


def run_to_v1(d: dict[str, Any]) -> dict[str, Any]:
    """v1 runs carry the assistant's `file_ids` and know nothing of parallel_tool_calls."""
    out = {k: v for k, v in d.items() if not k.startswith("_") and k != "parallel_tool_calls"}
    out["tools"] = _tools_v1(d.get("tools") or [])
    out["file_ids"] = d.get("_file_ids", [])
    return out


def _public_details(details: dict[str, Any]) -> dict[str, Any]:
    """Step details without the engine's private bookkeeping (keys starting with "_" on tool calls)."""
    if details.get("type") != "tool_calls":
        return details
    return {**details, "tool_calls": [{k: v for k, v in c.items() if not k.startswith("_")}
                                      for c in details.get("tool_calls", [])]}


def step(s: RunStep, version: Version = "v2") -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id, "object": "thread.run.step", "created_at": s.created_at, "run_id": s.run_id,
        "assistant_id": s.assistant_id, "thread_id": s.thread_id, "type": s.kind, "status": s.status,
        "cancelled_at": s.cancelled_at, "completed_at": s.completed_at, "expired_at": s.expired_at,
        "failed_at": s.failed_at, "last_error": s.last_error, "step_details": _public_details(s.step_details),
        "usage": s.usage, "metadata": {},
    }
    return step_to_v1(out) if version == "v1" else out


def _calls_to_v1(details: dict[str, Any]) -> dict[str, Any]:
    """v1 knew a search as `retrieval`, with nothing to show: a call (or a delta of one) keeps its index and id."""
    if details.get("type") != "tool_calls":
        return details
    calls = [{**{k: c[k] for k in ("index", "id") if k in c}, "type": "retrieval", "retrieval": {}}
             if c.get("type") == "file_search" else c for c in details.get("tool_calls", [])]
    return {**details, "tool_calls": calls}


def step_to_v1(d: dict[str, Any]) -> dict[str, Any]:
    if "step_details" not in d:
        return d
    return {**d, "step_details": _calls_to_v1(d["step_details"])}


def step_delta_to_v1(d: dict[str, Any]) -> dict[str, Any]:
    delta = d.get("delta") or {}
    if "step_details" not in delta:
        return d
    return {**d, "delta": {**delta, "step_details": _calls_to_v1(delta["step_details"])}}


def _public(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def event_data(event: str, data: Any, version: Version) -> Any:
    """An event's payload as a client of `version` sees it (events are stored in the v2 shape)."""
    if not isinstance(data, dict):
        return data
    obj = data.get("object")
    if version == "v2":
        return _public(data)
    if obj == "thread.run":
        return run_to_v1(data)
    if obj == "thread.message":
        return message_to_v1(data)
    if obj == "thread.run.step":
        return step_to_v1(data)
    if obj == "thread.run.step.delta":
        return step_delta_to_v1(_public(data))
    return _public(data)


# ---- vector store files and batches (v2 only) -------------------------------------------------------------------
DEFAULT_CHUNKING: dict[str, Any] = {"type": "static",
                                    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def default_chunking() -> dict[str, Any]:
    """The chunking a file gets when its request names none (a copy: callers store it in rows)."""
    return {"type": "static", "static": dict(DEFAULT_CHUNKING["static"])}


def file_counts(by_status: dict[str, int] | None) -> dict[str, int]:
    """`file_counts` of a vector store or batch from its files' count per status (None or {}: no files)."""
    c = {s: (by_status or {}).get(s, 0) for s in FILE_STATUSES}
    return {**c, "total": sum(c.values())}


def vector_store_file(f: VectorStoreFile) -> dict[str, Any]:
    return {"id": f.file_id, "object": "vector_store.file", "usage_bytes": f.usage_bytes, "created_at": f.created_at,
            "vector_store_id": f.vector_store_id, "status": f.status, "last_error": f.last_error,
            "chunking_strategy": f.chunking_strategy or default_chunking(),
            "attributes": f.attributes or {}}


def vector_store_file_batch(b: VectorStoreFileBatch, counts: dict[str, int] | None) -> dict[str, Any]:
    c = counts if counts is not None and "total" in counts else file_counts(counts)
    if c["in_progress"]:
        status = "in_progress"
    elif b.cancelled:
        status = "cancelled"
    elif c["total"] and c["failed"] == c["total"]:
        status = "failed"
    else:
        status = "completed"
    return {"id": b.id, "object": "vector_store.files_batch", "created_at": b.created_at,
            "vector_store_id": b.vector_store_id, "status": status, "file_counts": c}
