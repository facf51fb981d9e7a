"""/v1/vector_stores, their files and file batches. Files are indexed by the `ingest` workers after the commit;
their `status` says when they are searchable."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import text
from sqlmodel import col, select, update

from api.deps import ProjectDep, SessionDep
from api.errors import not_found
from api.pagination import PageDep, fetch_page, list_body
from api.schemas.vector_stores import (
    FileBatchCreate,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileUpdate,
    VectorStoreUpdate,
    dump,
)
from api.services import files as file_svc
from api.services import vector_stores as svc
from shared.ids import new_id, now
from shared.models import VectorStore, VectorStoreFile, VectorStoreFileBatch

router = APIRouter(tags=["vector_stores"])
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]


async def _render(session: SessionDep, vs: VectorStore) -> dict[str, Any]:
    return svc.render(vs, (await svc.counts(session, vector_store_ids=[vs.id])).get(vs.id))


@router.post("/vector_stores")
async def create_vector_store(body: VectorStoreCreate, session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    await file_svc.require_usable(session, project_id=project_id, file_ids=body.file_ids, param="file_ids")
    vs = await svc.create(session, project_id=project_id, file_ids=body.file_ids, name=body.name,
                          metadata=body.metadata, chunking_strategy=dump(body.chunking_strategy),
                          expires_after=body.expires_after.model_dump() if body.expires_after else None)
    await session.commit()
    return await _render(session, vs)


@router.get("/vector_stores")
async def list_vector_stores(session: SessionDep, project_id: ProjectDep, page: PageDep) -> dict[str, Any]:
    stmt = select(VectorStore).where(VectorStore.project_id == project_id)
    rows, has_more = await fetch_page(session, stmt, seq_col=VectorStore.seq, id_col=VectorStore.id, page=page)
    counts = await svc.counts(session, vector_store_ids=[r.id for r in rows])
    return list_body([svc.render(r, counts.get(r.id)) for r in rows], has_more)


@router.get("/vector_stores/{vector_store_id}")
async def retrieve_vector_store(vector_store_id: str, session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    return await _render(session, await svc.get(session, project_id=project_id, vector_store_id=vector_store_id))


@router.post("/vector_stores/{vector_store_id}")
async def modify_vector_store(vector_store_id: str, body: VectorStoreUpdate, session: SessionDep,
                              project_id: ProjectDep) -> dict[str, Any]:
    vs = await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    given = body.model_fields_set
    if "name" in given:
        vs.name = body.name
    if "metadata" in given:
        vs.meta = body.metadata
    if "expires_after" in given:
        vs.expires_after = body.expires_after.model_dump() if body.expires_after else None
        vs.expires_at = svc.expiry(vs.expires_after, vs.last_active_at or vs.created_at)
    session.add(vs)
    await session.commit()
    return await _render(session, vs)


@router.delete("/vector_stores/{vector_store_id}")
async def delete_vector_store(vector_store_id: str, session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    vs = await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    # Assistants and threads that named it stop naming it (their files and chunks go with the store).
    for table in ("assistant", "thread"):
        await session.exec(text(  # type: ignore[call-overload]
            f"UPDATE {table} SET vector_store_ids = vector_store_ids - :id "
            "WHERE project_id = :project_id AND vector_store_ids ? :id").bindparams(id=vs.id, project_id=project_id))
    await session.delete(vs)
    await session.commit()
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


# ---- files ---------------------------------------------------------------------------------------------------
async def _file(session: SessionDep, vector_store_id: str, file_id: str) -> VectorStoreFile:
    row = (await session.exec(select(VectorStoreFile).where(VectorStoreFile.vector_store_id == vector_store_id,
                                                            VectorStoreFile.file_id == file_id))).first()
    if row is None:
        raise not_found("vector store file", file_id)
    return row


@router.post("/vector_stores/{vector_store_id}/files")
async def create_vector_store_file(vector_store_id: str, body: VectorStoreFileCreate, session: SessionDep,
                                   project_id: ProjectDep) -> dict[str, Any]:
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    await file_svc.require_usable(session, project_id=project_id, file_ids=[body.file_id], param="file_id")
    [row] = await svc.add_files(session, vector_store_id=vector_store_id, file_ids=[body.file_id],
                                chunking_strategy=dump(body.chunking_strategy), attributes=body.attributes)
    await session.commit()
    return svc.render_file(row)


@router.get("/vector_stores/{vector_store_id}/files")
async def list_vector_store_files(vector_store_id: str, session: SessionDep, project_id: ProjectDep,
                                  page: PageDep, filter: Annotated[FileStatus | None, Query()] = None,
                                  ) -> dict[str, Any]:
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    return await _file_page(session, page, filter, VectorStoreFile.vector_store_id == vector_store_id)


async def _file_page(session: SessionDep, page: Any, status: str | None, *where: Any) -> dict[str, Any]:
    stmt = select(VectorStoreFile).where(*where)
    if status:
        stmt = stmt.where(VectorStoreFile.status == status)
    rows, has_more = await fetch_page(session, stmt, seq_col=VectorStoreFile.seq, id_col=VectorStoreFile.file_id,
                                      page=page)
    return list_body([svc.render_file(r) for r in rows], has_more)


@router.get("/vector_stores/{vector_store_id}/files/{file_id}")
async def retrieve_vector_store_file(vector_store_id: str, file_id: str, session: SessionDep,
                                     project_id: ProjectDep) -> dict[str, Any]:
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    return svc.render_file(await _file(session, vector_store_id, file_id))


@router.post("/vector_stores/{vector_store_id}/files/{file_id}")
async def update_vector_store_file(vector_store_id: str, file_id: str, body: VectorStoreFileUpdate,
                                   session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    row = await _file(session, vector_store_id, file_id)
    row.attributes = body.attributes
    session.add(row)
    await session.commit()
    return svc.render_file(row)


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}")
async def delete_vector_store_file(vector_store_id: str, file_id: str, session: SessionDep,
                                   project_id: ProjectDep) -> dict[str, Any]:
    """Detach the file: it leaves the store's index (its chunks cascade); the File itself stays."""
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    row = await _file(session, vector_store_id, file_id)
    await session.delete(row)
    await session.exec(text(  # type: ignore[call-overload]
        "UPDATE vector_store SET usage_bytes = GREATEST(usage_bytes - :b, 0) WHERE id = :id"
    ).bindparams(b=row.usage_bytes, id=vector_store_id))
    await session.commit()
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


# ---- file batches --------------------------------------------------------------------------------------------
async def _batch(session: SessionDep, project_id: str, vector_store_id: str, batch_id: str) -> VectorStoreFileBatch:
    b = await session.get(VectorStoreFileBatch, batch_id)
    if b is None or b.project_id != project_id or b.vector_store_id != vector_store_id:
        raise not_found("vector store file batch", batch_id)
    return b


async def _render_batch(session: SessionDep, b: VectorStoreFileBatch) -> dict[str, Any]:
    return svc.render_batch(b, (await svc.counts(session, batch_id=b.id)).get(b.id))


@router.post("/vector_stores/{vector_store_id}/file_batches")
async def create_file_batch(vector_store_id: str, body: FileBatchCreate, session: SessionDep,
                            project_id: ProjectDep) -> dict[str, Any]:
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    items = body.files or [VectorStoreFileCreate(file_id=f, chunking_strategy=body.chunking_strategy,
                                                 attributes=body.attributes) for f in body.file_ids or []]
    param = "files" if body.files else "file_ids"
    await file_svc.require_usable(session, project_id=project_id, file_ids=[i.file_id for i in items], param=param)
    b = VectorStoreFileBatch(id=new_id("vector_store_file_batch"), project_id=project_id,
                             vector_store_id=vector_store_id, created_at=now())
    session.add(b)
    await session.flush()
    for item in items:
        await svc.add_files(session, vector_store_id=vector_store_id, file_ids=[item.file_id], batch_id=b.id,
                            chunking_strategy=dump(item.chunking_strategy), attributes=item.attributes)
    await session.commit()
    return await _render_batch(session, b)


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}")
async def retrieve_file_batch(vector_store_id: str, batch_id: str, session: SessionDep,
                              project_id: ProjectDep) -> dict[str, Any]:
    return await _render_batch(session, await _batch(session, project_id, vector_store_id, batch_id))


@router.post("/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(vector_store_id: str, batch_id: str, session: SessionDep,
                            project_id: ProjectDep) -> dict[str, Any]:
    """Files not indexed yet are cancelled (their partial chunks removed); finished ones stay."""
    b = await _batch(session, project_id, vector_store_id, batch_id)
    b.cancelled = True
    session.add(b)
    # The ingest worker holds a row lock while it writes a batch of chunks: this waits for it, and the worker's
    # next batch sees the file cancelled and stops.
    await session.exec(update(VectorStoreFile).where(
        col(VectorStoreFile.batch_id) == batch_id, col(VectorStoreFile.status) == "in_progress",
    ).values(status="cancelled"))
    await session.exec(text(  # type: ignore[call-overload]
        "DELETE FROM chunk c USING vector_store_file f WHERE f.batch_id = :b AND f.status = 'cancelled' "
        "AND c.vector_store_id = f.vector_store_id AND c.file_id = f.file_id").bindparams(b=batch_id))
    await session.commit()
    return await _render_batch(session, b)


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(vector_store_id: str, batch_id: str, session: SessionDep, project_id: ProjectDep,
                                page: PageDep, filter: Annotated[FileStatus | None, Query()] = None,
                                ) -> dict[str, Any]:
    await _batch(session, project_id, vector_store_id, batch_id)
    return await _file_page(session, page, filter, VectorStoreFile.vector_store_id == vector_store_id,
                            VectorStoreFile.batch_id == batch_id)
