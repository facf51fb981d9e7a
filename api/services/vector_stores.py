"""Vector stores and their files: the API's side (rows and shapes). Ingestion runs on the `ingest` queue
(worker/ingest.py); rows added here are queued for it when the transaction commits."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, func, update
from sqlalchemy.orm import Session
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import dispatch
from api.errors import APIError, not_found
from api.schemas.common import FileSearchResources
from api.services import files as file_svc
from shared import wire
from shared.ids import new_id, now
from shared.models import Thread, VectorStore, VectorStoreFile, VectorStoreFileBatch

THREAD_STORE_DAYS = 7  # OpenAI's automatic thread vector stores expired 7 days after last use


def _queue(session: AsyncSession, vector_store_id: str, file_id: str, attempt: int) -> None:
    session.sync_session.info.setdefault("ingest", []).append((vector_store_id, file_id, attempt))


@event.listens_for(Session, "after_commit")
def _enqueue_ingestion(session: Session) -> None:
    """Only committed rows are handed to the ingest workers (a rolled-back file never gets a task)."""
    pending = session.info.pop("ingest", [])
    for vs_id, file_id, attempt in dict.fromkeys(pending):
        dispatch.enqueue_ingest(vs_id, file_id, attempt)


@event.listens_for(Session, "after_rollback")
def _forget_ingestion(session: Session) -> None:
    session.info.pop("ingest", None)


def strategy(chunking: Any) -> dict[str, Any]:
    """A request's chunking_strategy as stored (and shown): always the static sizes used."""
    if isinstance(chunking, dict) and chunking.get("type") == "static":
        return {"type": "static", "static": dict(chunking["static"])}
    return wire.default_chunking()


async def get(session: AsyncSession, *, project_id: str, vector_store_id: str) -> VectorStore:
    vs = await session.get(VectorStore, vector_store_id)
    if vs is None or vs.project_id != project_id:
        raise not_found("vector store", vector_store_id)
    return vs


async def require_exist(session: AsyncSession, *, project_id: str, ids: Sequence[str], param: str) -> None:
    if not ids:
        return
    found = set((await session.exec(select(VectorStore.id).where(col(VectorStore.id).in_(ids),
                                                                 VectorStore.project_id == project_id))).all())
    for vs_id in ids:
        if vs_id not in found:
            raise APIError(400, f"Invalid '{param}': no vector store found with id '{vs_id}'.", param=param,
                           code="invalid_value")


def expiry(expires_after: dict[str, Any] | None, last_active_at: int) -> int | None:
    return last_active_at + int(expires_after["days"]) * 86400 if expires_after else None


async def create(session: AsyncSession, *, project_id: str, file_ids: Sequence[str],
                 metadata: dict[str, str] | None = None, name: str | None = None,
                 expires_after: dict[str, Any] | None = None, chunking_strategy: Any = None) -> VectorStore:
    t = now()
    vs = VectorStore(id=new_id("vector_store"), project_id=project_id, created_at=t, name=name, meta=metadata,
                     last_active_at=t, expires_after=expires_after, expires_at=expiry(expires_after, t))
    session.add(vs)
    await session.flush()
    await add_files(session, vector_store_id=vs.id, file_ids=file_ids, chunking_strategy=chunking_strategy)
    return vs


async def add_files(session: AsyncSession, *, vector_store_id: str, file_ids: Sequence[str],
                    chunking_strategy: Any = None, attributes: Any = None,
                    batch_id: str | None = None) -> list[VectorStoreFile]:
    """Attach files (queued for ingestion on commit). A file already attached is ingested again, as OpenAI did,
    with the new strategy and attributes."""
    out = []
    existing = {f.file_id: f for f in (await session.exec(select(VectorStoreFile).where(
        VectorStoreFile.vector_store_id == vector_store_id, col(VectorStoreFile.file_id).in_(file_ids)))).all()}
    for fid in dict.fromkeys(file_ids):
        row = existing.get(fid)
        if row is None:
            row = VectorStoreFile(vector_store_id=vector_store_id, file_id=fid, created_at=now())
            session.add(row)
        else:
            row.attempt += 1
        row.status, row.last_error, row.usage_bytes = "in_progress", None, 0
        row.chunking_strategy = strategy(chunking_strategy)
        row.attributes, row.batch_id = attributes, batch_id
        out.append(row)
    await session.flush()
    for row in out:
        _queue(session, vector_store_id, row.file_id, row.attempt)
    return out


async def set_files(session: AsyncSession, *, vector_store_id: str, file_ids: Sequence[str]) -> None:
    """Make the store's file set exactly `file_ids` (v1 assistant files): new ones are ingested, removed ones
    leave the index with their rows."""
    await session.exec(delete(VectorStoreFile).where(
        col(VectorStoreFile.vector_store_id) == vector_store_id, col(VectorStoreFile.file_id).not_in(file_ids)))
    present = set((await session.exec(select(VectorStoreFile.file_id).where(
        VectorStoreFile.vector_store_id == vector_store_id))).all())
    new = [f for f in dict.fromkeys(file_ids) if f not in present]
    if new:
        await add_files(session, vector_store_id=vector_store_id, file_ids=new)


async def resolve(session: AsyncSession, *, project_id: str, fs: FileSearchResources | None,
                  param: str) -> list[str]:
    """tool_resources.file_search -> the vector store ids to store (creating an inline store if asked)."""
    if fs is None:
        return []
    if fs.vector_stores:
        helper = fs.vector_stores[0]
        await file_svc.require_usable(session, project_id=project_id, file_ids=helper.file_ids,
                                      param=f"{param}.vector_stores[0].file_ids")
        vs = await create(session, project_id=project_id, file_ids=helper.file_ids, metadata=helper.metadata,
                          chunking_strategy=helper.chunking_strategy)
        return [vs.id]
    ids = list(fs.vector_store_ids or [])
    await require_exist(session, project_id=project_id, ids=ids, param=f"{param}.vector_store_ids")
    return ids


async def attach_to_thread(session: AsyncSession, *, thread: Thread, file_ids: Sequence[str]) -> None:
    """Files attached to a message for file_search go into the thread's vector store — created on first use,
    expiring 7 days after it was last active, as OpenAI's automatic thread stores did."""
    if not file_ids:
        return
    if thread.vector_store_ids:
        vs_id = thread.vector_store_ids[0]
    else:
        vs = await create(session, project_id=thread.project_id, file_ids=[], name="thread vector store",
                          expires_after={"anchor": "last_active_at", "days": THREAD_STORE_DAYS})
        vs_id = vs.id
        thread.vector_store_ids = [vs_id]
        await session.exec(update(Thread).where(col(Thread.id) == thread.id)
                           .values(vector_store_ids=[vs_id]))
    present = set((await session.exec(select(VectorStoreFile.file_id).where(
        VectorStoreFile.vector_store_id == vs_id))).all())
    await add_files(session, vector_store_id=vs_id, file_ids=[f for f in file_ids if f not in present])


# ---- shapes ----------------------------------------------------------------------------------------------------
async def counts(session: AsyncSession, *, vector_store_ids: Sequence[str] = (),
                 batch_id: str | None = None) -> dict[str, dict[str, int]]:
    """file_counts per vector store (or for one batch, keyed by the batch id); one with no files is absent."""
    key = VectorStoreFile.batch_id if batch_id else VectorStoreFile.vector_store_id
    stmt = select(key, VectorStoreFile.status, func.count()).group_by(key, VectorStoreFile.status)
    stmt = stmt.where(VectorStoreFile.batch_id == batch_id) if batch_id else stmt.where(
        col(VectorStoreFile.vector_store_id).in_(vector_store_ids))
    by_owner: dict[str, dict[str, int]] = {}
    for owner, status, n in (await session.exec(stmt)).all():
        by_owner.setdefault(str(owner), {})[status] = n
    return {owner: wire.file_counts(by_status) for owner, by_status in by_owner.items()}


def render(vs: VectorStore, file_counts: dict[str, int] | None) -> dict[str, Any]:
    c = file_counts or wire.file_counts(None)
    expired = vs.expires_at is not None and vs.expires_at <= now()
    # name: a string in every spec (and the SDK's type), so an unnamed store shows "".
    out = {"id": vs.id, "object": "vector_store", "created_at": vs.created_at, "name": vs.name or "",
           # `bytes` is the first v2 spec's name for usage_bytes (SDKs 1.21-1.2x read it): both are sent.
           "usage_bytes": vs.usage_bytes, "bytes": vs.usage_bytes, "file_counts": c,
           "status": "expired" if expired else "in_progress" if c["in_progress"] else "completed",
           "expires_at": vs.expires_at, "last_active_at": vs.last_active_at, "metadata": vs.meta or {}}
    if vs.expires_after:  # absent rather than null: the first v2 spec does not allow null here
        out["expires_after"] = vs.expires_after
    return out


def render_file(f: VectorStoreFile) -> dict[str, Any]:
    return wire.vector_store_file(f)


def render_batch(b: VectorStoreFileBatch, file_counts: dict[str, int] | None) -> dict[str, Any]:
    return wire.vector_store_file_batch(b, file_counts)
