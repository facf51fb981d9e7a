"""Threads and their messages."""

from typing import Any

from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Version
from api.errors import APIError, not_found
from api.schemas.threads import MessageCreate, ThreadCreate, ThreadUpdate
from api.services import files as file_svc
from api.services import images as image_svc
from api.services import vector_stores as vs_svc
from api.shapes import V1_ONLY, V2_ONLY, check_fields
from shared import wire
from shared.ids import new_id, now
from shared.models import Message, Thread
from shared.rows import prepared_insert, to_row

MAX_THREAD_MESSAGES = 32


async def get(session: AsyncSession, *, project_id: str, thread_id: str) -> Thread:
    row = (await session.exec(select(Thread).where(Thread.id == thread_id,
                                                   Thread.project_id == project_id))).first()
    if row is None:
        raise not_found("thread", thread_id)
    return row


async def get_message(session: AsyncSession, *, thread: Thread, message_id: str) -> Message:
    row = (await session.exec(select(Message).where(Message.id == message_id,
                                                    Message.thread_id == thread.id))).first()
    if row is None:
        raise not_found("message", message_id)
    return row


async def _apply_resources(session: AsyncSession, t: Thread, body: ThreadCreate | ThreadUpdate) -> None:
    tr = body.tool_resources
    if tr is None:
        return
    if tr.code_interpreter is not None:
        ids = list(dict.fromkeys(tr.code_interpreter.file_ids))
        await file_svc.require_usable(session, project_id=t.project_id, file_ids=ids,
                                      param="tool_resources.code_interpreter.file_ids")
        t.code_interpreter_file_ids = ids
    if tr.file_search is not None and tr.file_search.names_stores:
        t.vector_store_ids = await vs_svc.resolve(session, project_id=t.project_id, fs=tr.file_search,
                                                  param="tool_resources.file_search")


async def create(session: AsyncSession, *, project_id: str, body: ThreadCreate, version: Version) -> Thread:
    check_fields(body, version, v1_only=V1_ONLY, v2_only=V2_ONLY)
    messages = body.messages or []
    if len(messages) > MAX_THREAD_MESSAGES:
        raise APIError(400, f"Invalid 'messages': array too long. Expected an array with maximum length "
                       f"{MAX_THREAD_MESSAGES}, but got an array with length {len(messages)} instead.",
                       param="messages", code="array_above_max_length")
    t = Thread(id=new_id("thread"), project_id=project_id, created_at=now(), meta=body.metadata)
    await _apply_resources(session, t, body)
    await insert(session, t)
    for i, m in enumerate(messages):
        await add_message(session, thread=t, body=m, version=version, param=f"messages[{i}]")
    return t


async def update(session: AsyncSession, *, t: Thread, body: ThreadUpdate, version: Version) -> None:
    check_fields(body, version, v1_only=V1_ONLY, v2_only=V2_ONLY)
    if "metadata" in body.model_fields_set:
        t.meta = body.metadata
    await _apply_resources(session, t, body)
    session.add(t)


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.type == "text":
            parts.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        else:
            parts.append({"type": part.type, part.type: getattr(part, part.type).model_dump(exclude_none=True)})
    return parts


async def add_message(session: AsyncSession, *, thread: Thread, body: MessageCreate, version: Version,
                      param: str = "") -> Message:
    check_fields(body, version, v1_only=V1_ONLY, v2_only=V2_ONLY)
    prefix = f"{param}." if param else ""
    if body.file_ids:
        attachments: list[dict[str, Any]] = [{"file_id": f, "tools": list(wire.V1_FILE_TOOLS)}
                                             for f in dict.fromkeys(body.file_ids)]
        where = f"{prefix}file_ids"
    else:
        attachments = [{"file_id": a.file_id, "tools": [t.model_dump() for t in a.tools]}
                       for a in body.attachments or []]
        where = f"{prefix}attachments"
    await file_svc.require_usable(session, project_id=thread.project_id,
                                  file_ids=[a["file_id"] for a in attachments], param=where)
    await image_svc.require(session, project_id=thread.project_id, content=body.content, prefix=prefix)
    await vs_svc.attach_to_thread(session, thread=thread, file_ids=[
        a["file_id"] for a in attachments if any(t.get("type") in ("file_search", "retrieval") for t in a["tools"])])
    m = Message(id=new_id("message"), project_id=thread.project_id, thread_id=thread.id, created_at=now(),
                role=body.role, content=_content_parts(body.content), attachments=attachments, meta=body.metadata)
    await insert(session, m)
    return m


async def insert(session: AsyncSession, obj: SQLModel) -> None:
    """A plain INSERT on the session's transaction: these rows are written once and not touched again here."""
    row = to_row(obj)
    await prepared_insert(type(obj), tuple(row)).execute_async(await session.connection(), row)


def render(t: Thread, version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "object": "thread", "created_at": t.created_at, "metadata": t.meta or {}}
    if version == "v2":
        resources: dict[str, Any] = {}
        if t.code_interpreter_file_ids:
            resources["code_interpreter"] = {"file_ids": t.code_interpreter_file_ids}
        if t.vector_store_ids:
            resources["file_search"] = {"vector_store_ids": t.vector_store_ids}
        out["tool_resources"] = resources
    return out


def render_message(m: Message, version: Version) -> dict[str, Any]:
    return wire.message(m, version)


def render_message_file(m: Message, file_id: str) -> dict[str, Any]:
    return {"id": file_id, "object": "thread.message.file", "created_at": m.created_at, "message_id": m.id}
