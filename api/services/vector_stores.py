"""The slice of vector stores that assistants and threads need now: check ids, create one inline
(tool_resources.file_search.vector_stores) and mirror an assistant's v1 retrieval files. The vector store API
and ingestion arrive with the retrieval issue."""

from collections.abc import Sequence

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import APIError
from api.schemas.common import FileSearchResources
from api.services import files as file_svc
from shared.ids import new_id, now
from shared.models import VectorStore, VectorStoreFile


async def require_exist(session: AsyncSession, *, project_id: str, ids: Sequence[str], param: str) -> None:
    if not ids:
        return
    found = set((await session.exec(select(VectorStore.id).where(col(VectorStore.id).in_(ids),
                                                                 VectorStore.project_id == project_id))).all())
    for vs_id in ids:
        if vs_id not in found:
            raise APIError(400, f"Invalid '{param}': no vector store found with id '{vs_id}'.", param=param,
                           code="invalid_value")


async def create(session: AsyncSession, *, project_id: str, file_ids: Sequence[str],
                 metadata: dict[str, str] | None = None, name: str | None = None) -> VectorStore:
    vs = VectorStore(id=new_id("vector_store"), project_id=project_id, created_at=now(), name=name,
                     meta=metadata, last_active_at=now())
    session.add(vs)
    await session.flush()
    await set_files(session, vector_store_id=vs.id, file_ids=file_ids)
    return vs


async def set_files(session: AsyncSession, *, vector_store_id: str, file_ids: Sequence[str]) -> None:
    """Make the store's file set exactly `file_ids` (new ones start `in_progress` until ingested)."""
    await session.exec(delete(VectorStoreFile).where(
        col(VectorStoreFile.vector_store_id) == vector_store_id, col(VectorStoreFile.file_id).not_in(file_ids)))
    present = set((await session.exec(select(VectorStoreFile.file_id).where(
        VectorStoreFile.vector_store_id == vector_store_id))).all())
    for fid in dict.fromkeys(file_ids):
        if fid not in present:
            session.add(VectorStoreFile(vector_store_id=vector_store_id, file_id=fid, created_at=now()))


async def resolve(session: AsyncSession, *, project_id: str, fs: FileSearchResources | None,
                  param: str) -> list[str]:
    """tool_resources.file_search -> the vector store ids to store (creating an inline store if asked)."""
    if fs is None:
        return []
    if fs.vector_stores:
        helper = fs.vector_stores[0]
        await file_svc.require_usable(session, project_id=project_id, file_ids=helper.file_ids,
                                      param=f"{param}.vector_stores[0].file_ids")
        vs = await create(session, project_id=project_id, file_ids=helper.file_ids, metadata=helper.metadata)
        return [vs.id]
    ids = list(fs.vector_store_ids or [])
    await require_exist(session, project_id=project_id, ids=ids, param=f"{param}.vector_store_ids")
    return ids
