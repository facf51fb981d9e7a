"""/v1/files: upload (streamed), list, retrieve, delete, download."""

from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import select

from api.deps import ProjectDep, SessionDep
from api.errors import APIError
from api.pagination import Page, fetch_page, list_body
from api.services import files as svc
from api.uploads import receive_upload
from shared.blobstore import aiter_blob, from_settings
from shared.config import get_settings
from shared.ids import new_id, now
from shared.models import File

router = APIRouter(tags=["files"])


@router.post("/files")
async def create_file(request: Request, session: SessionDep, project_id: ProjectDep) -> dict[str, object]:
    settings = get_settings()
    store = from_settings(settings)
    file_id = new_id("file")
    blob_key = f"{project_id}/{file_id}"
    up = await receive_upload(request, store, blob_key, settings.max_file_bytes)
    try:
        purpose = up.fields.get("purpose")
        for name in up.fields.keys() - {"purpose"}:
            raise APIError(400, f"Unrecognized request argument supplied: {name}", param=name,
                           code="unknown_parameter")
        if up.filename is None or up.writer is None:
            raise APIError(400, "Missing required parameter: 'file'.", param="file",
                           code="missing_required_parameter")
        if not purpose:
            raise APIError(400, "Missing required parameter: 'purpose'.", param="purpose",
                           code="missing_required_parameter")
        if purpose not in svc.UPLOAD_PURPOSES:
            supported = ", ".join(f"'{p}'" for p in svc.UPLOAD_PURPOSES)
            raise APIError(400, f"Invalid value for 'purpose': '{purpose}'. Supported values are: {supported}.",
                           param="purpose", code="invalid_value")
        await anyio.to_thread.run_sync(up.writer.commit)
    except BaseException:
        if up.writer is not None:
            await anyio.to_thread.run_sync(up.writer.abort)
        raise
    row = File(id=file_id, project_id=project_id, created_at=now(), filename=up.filename[:512] or "upload",
               purpose=purpose, bytes=up.size, blob_key=blob_key)
    session.add(row)
    try:
        await session.commit()
    except BaseException:
        await anyio.to_thread.run_sync(store.delete, blob_key)
        raise
    return svc.render(row)


@router.get("/files")
async def list_files(
    session: SessionDep,
    project_id: ProjectDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    after: str | None = None,
) -> dict[str, object]:
    stmt = select(File).where(File.project_id == project_id)
    if purpose:
        stmt = stmt.where(File.purpose == purpose)
    page = Page(limit=limit, order="asc" if order == "asc" else "desc", after=after, before=None)
    rows, has_more = await fetch_page(session, stmt, seq_col=File.seq, id_col=File.id, page=page)
    return list_body([svc.render(r) for r in rows], has_more)


@router.get("/files/{file_id}")
async def retrieve_file(file_id: str, session: SessionDep, project_id: ProjectDep) -> dict[str, object]:
    return svc.render(await svc.get(session, project_id=project_id, file_id=file_id))


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, session: SessionDep, project_id: ProjectDep) -> dict[str, object]:
    row = await svc.get(session, project_id=project_id, file_id=file_id)
    await session.delete(row)  # assistant/vector-store links go with it (ON DELETE CASCADE)
    await session.commit()
    # Bytes go after the row: a crash in between leaves an orphan blob, never a row without bytes.
    await anyio.to_thread.run_sync(from_settings().delete, row.blob_key)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/files/{file_id}/content")
async def download_file(file_id: str, session: SessionDep, project_id: ProjectDep) -> StreamingResponse:
    row = await svc.get(session, project_id=project_id, file_id=file_id)
    return StreamingResponse(
        aiter_blob(from_settings(), row.blob_key),
        media_type="application/octet-stream",
        headers={"Content-Length": str(row.bytes),
                 "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(row.filename)}"},
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
