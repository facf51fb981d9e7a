"""Assistants in one storage model, rendered in either API shape.

Files: the assistant's own files (`AssistantFile`) are v1's `file_ids` and v2's
tool_resources.code_interpreter.file_ids. For v1 `retrieval` the same files are mirrored into an automatic
vector store, which is what v2 shows under tool_resources.file_search — so an assistant made with one SDK
reads correctly with the other. Only v1 requests mirror: in v2, code_interpreter files and file_search stores
are separate resources, and a v2 request never creates, fills or replaces a store it did not name.
"""

from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Version
from api.errors import APIError, not_found
from api.schemas.assistants import AssistantCreate, AssistantUpdate
from api.schemas.common import ResponseFormatObject
from api.services import files as file_svc
from api.services import vector_stores as vs_svc
from api.shapes import V1_ONLY, V2_ONLY, canonical_tools, check_fields, has_tool, render_tools
from shared.ids import new_id, now
from shared.models import Assistant, AssistantFile, VectorStore

MAX_FILES = 20


async def get(session: AsyncSession, *, project_id: str, assistant_id: str) -> Assistant:
    row = (await session.exec(select(Assistant).where(Assistant.id == assistant_id,
                                                      Assistant.project_id == project_id))).first()
    if row is None:
        raise not_found("assistant", assistant_id)
    return row


async def file_ids(session: AsyncSession, *, assistant_id: str) -> list[str]:
    return list((await session.exec(select(AssistantFile.file_id).where(
        AssistantFile.assistant_id == assistant_id).order_by(col(AssistantFile.seq)))).all())


async def files_by_assistant(session: AsyncSession, *, assistant_ids: list[str]) -> dict[str, list[str]]:
    rows = (await session.exec(select(AssistantFile).where(col(AssistantFile.assistant_id).in_(assistant_ids))
                               .order_by(col(AssistantFile.seq)))).all()
    out: dict[str, list[str]] = {a: [] for a in assistant_ids}
    for r in rows:
        out[r.assistant_id].append(r.file_id)
    return out


async def _set_files(session: AsyncSession, a: Assistant, ids: list[str], param: str) -> None:
    await file_svc.require_usable(session, project_id=a.project_id, file_ids=ids, param=param)
    ids = list(dict.fromkeys(ids))
    await session.exec(delete(AssistantFile).where(
        col(AssistantFile.assistant_id) == a.id, col(AssistantFile.file_id).not_in(ids)))
    present = set(await file_ids(session, assistant_id=a.id))
    for fid in ids:
        if fid not in present:
            session.add(AssistantFile(assistant_id=a.id, file_id=fid, created_at=now()))
    await session.flush()


async def sync_retrieval_store(session: AsyncSession, a: Assistant) -> None:
    """Mirror the assistant's own files into its automatic vector store while it uses v1 retrieval."""
    ids = await file_ids(session, assistant_id=a.id)
    if a.auto_vector_store_id is None:
        if not (ids and has_tool(a.tools, "file_search") and not a.vector_store_ids):
            return
        vs = await vs_svc.create(session, project_id=a.project_id, file_ids=ids, name=f"Files of {a.id}")
        a.auto_vector_store_id = vs.id
        a.vector_store_ids = [vs.id]
        session.add(a)
        return
    await vs_svc.set_files(session, vector_store_id=a.auto_vector_store_id, file_ids=ids)


async def _apply(session: AsyncSession, a: Assistant, fields: dict[str, Any], body: Any, version: Version) -> None:
    simple = ("model", "name", "description", "instructions", "temperature", "top_p")
    for name in simple:
        if name in fields:
            setattr(a, name, fields[name])
    if "metadata" in fields:
        a.meta = fields["metadata"]
    if "response_format" in fields:
        rf = fields["response_format"]
        a.response_format = rf.wire() if isinstance(rf, ResponseFormatObject) else (None if rf == "none" else rf)
    if "tools" in fields:
        a.tools = canonical_tools(body.tools or [], version)
    session.add(a)
    await session.flush()
    if "file_ids" in fields:
        await _set_files(session, a, fields["file_ids"] or [], "file_ids")
    tr = fields.get("tool_resources")
    if tr is not None:
        if tr.code_interpreter is not None:
            before = set(await file_ids(session, assistant_id=a.id))
            await _set_files(session, a, tr.code_interpreter.file_ids,
                             "tool_resources.code_interpreter.file_ids")
            if set(tr.code_interpreter.file_ids) != before:
                # v2 changed the code files: a store mirroring v1's files keeps what it holds (it is file_search's,
                # which this request did not name) and stops following them.
                a.auto_vector_store_id = None
        if tr.file_search is not None and tr.file_search.names_stores:
            a.vector_store_ids = await vs_svc.resolve(session, project_id=a.project_id, fs=tr.file_search,
                                                      param="tool_resources.file_search")
            if a.auto_vector_store_id not in a.vector_store_ids:
                a.auto_vector_store_id = None  # v2 took file_search over: stop mirroring into the old store
    if version == "v1":
        await sync_retrieval_store(session, a)


async def create(session: AsyncSession, *, project_id: str, body: AssistantCreate, version: Version) -> Assistant:
    check_fields(body, version, v1_only=V1_ONLY, v2_only=V2_ONLY)
    a = Assistant(id=new_id("assistant"), project_id=project_id, created_at=now(), model=body.model)
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    fields.setdefault("tools", [])
    await _apply(session, a, fields, body, version)
    return a


async def update(session: AsyncSession, *, a: Assistant, body: AssistantUpdate, version: Version) -> None:
    check_fields(body, version, v1_only=V1_ONLY, v2_only=V2_ONLY)
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    if "model" in fields and fields["model"] is None:
        raise APIError(400, "Invalid type for 'model': expected a string, but got null instead.", param="model",
                       code="invalid_type")
    if "tools" in fields and fields["tools"] is None:
        fields["tools"] = []
    await _apply(session, a, fields, body, version)


async def remove(session: AsyncSession, a: Assistant) -> None:
    auto = a.auto_vector_store_id
    await session.delete(a)
    if auto:
        await session.exec(delete(VectorStore).where(col(VectorStore.id) == auto))


async def attach_file(session: AsyncSession, a: Assistant, file_id: str) -> AssistantFile:
    """v1 POST /assistants/{id}/files (idempotent: attaching an attached file returns it)."""
    existing = (await session.exec(select(AssistantFile).where(AssistantFile.assistant_id == a.id,
                                                               AssistantFile.file_id == file_id))).first()
    if existing:
        return existing
    await file_svc.get(session, project_id=a.project_id, file_id=file_id)
    await file_svc.require_usable(session, project_id=a.project_id, file_ids=[file_id], param="file_id")
    if len(await file_ids(session, assistant_id=a.id)) >= MAX_FILES:
        raise APIError(400, f"Assistant {a.id} already has the maximum of {MAX_FILES} files attached.",
                       param="file_id", code="too_many_files")
    row = AssistantFile(assistant_id=a.id, file_id=file_id, created_at=now())
    session.add(row)
    await session.flush()
    await sync_retrieval_store(session, a)
    return row


def render(a: Assistant, files: list[str], version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id, "object": "assistant", "created_at": a.created_at, "name": a.name,
        "description": a.description, "model": a.model, "instructions": a.instructions,
        "tools": render_tools(a.tools, version),
    }
    if version == "v1":
        out["file_ids"] = files
        out["metadata"] = a.meta or {}
        return out
    resources: dict[str, Any] = {}
    if files and (has_tool(a.tools, "code_interpreter") or a.auto_vector_store_id is None):
        resources["code_interpreter"] = {"file_ids": files}
    if a.vector_store_ids:
        resources["file_search"] = {"vector_store_ids": a.vector_store_ids}
    out.update(tool_resources=resources, metadata=a.meta or {},
               temperature=1.0 if a.temperature is None else a.temperature,
               top_p=1.0 if a.top_p is None else a.top_p,
               response_format=a.response_format if a.response_format is not None else "auto")
    return out


def render_file(row: AssistantFile) -> dict[str, Any]:
    return {"id": row.file_id, "object": "assistant.file", "created_at": row.created_at,
            "assistant_id": row.assistant_id}
