"""/v1/assistants and (v1 shape) /v1/assistants/{id}/files."""

from typing import Any

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import ProjectDep, SessionDep, VersionDep
from api.errors import APIError, not_found
from api.pagination import PageDep, fetch_page, list_body
from api.schemas.assistants import AssistantCreate, AssistantFileCreate, AssistantUpdate
from api.services import assistants as svc
from shared.models import Assistant, AssistantFile

router = APIRouter(tags=["assistants"])


def v1_only(version: str, what: str) -> None:
    if version != "v1":
        raise APIError(400, f"The {what} API is part of the 'assistants=v1' shape; with 'assistants=v2' use "
                       "tool_resources instead.", code="invalid_beta")


@router.post("/assistants")
async def create_assistant(body: AssistantCreate, session: SessionDep, project_id: ProjectDep,
                           version: VersionDep) -> dict[str, Any]:
    a = await svc.create(session, project_id=project_id, body=body, version=version)
    files = await svc.file_ids(session, assistant_id=a.id)
    await session.commit()
    return svc.render(a, files, version)


@router.get("/assistants")
async def list_assistants(page: PageDep, session: SessionDep, project_id: ProjectDep,
                          version: VersionDep) -> dict[str, Any]:
    stmt = select(Assistant).where(Assistant.project_id == project_id)
    rows, has_more = await fetch_page(session, stmt, seq_col=Assistant.seq, id_col=Assistant.id, page=page)
    files = await svc.files_by_assistant(session, assistant_ids=[a.id for a in rows])
    return list_body([svc.render(a, files[a.id], version) for a in rows], has_more)


@router.get("/assistants/{assistant_id}")
async def retrieve_assistant(assistant_id: str, session: SessionDep, project_id: ProjectDep,
                             version: VersionDep) -> dict[str, Any]:
    a = await svc.get(session, project_id=project_id, assistant_id=assistant_id)
    return svc.render(a, await svc.file_ids(session, assistant_id=a.id), version)


@router.post("/assistants/{assistant_id}")
async def modify_assistant(assistant_id: str, body: AssistantUpdate, session: SessionDep,
                           project_id: ProjectDep, version: VersionDep) -> dict[str, Any]:
    a = await svc.get(session, project_id=project_id, assistant_id=assistant_id)
    await svc.update(session, a=a, body=body, version=version)
    files = await svc.file_ids(session, assistant_id=a.id)
    await session.commit()
    return svc.render(a, files, version)


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(assistant_id: str, session: SessionDep, project_id: ProjectDep,
                           version: VersionDep) -> dict[str, Any]:
    a = await svc.get(session, project_id=project_id, assistant_id=assistant_id)
    await svc.remove(session, a)
    await session.commit()
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}


@router.post("/assistants/{assistant_id}/files")
async def create_assistant_file(assistant_id: str, body: AssistantFileCreate, session: SessionDep,
                                project_id: ProjectDep, version: VersionDep) -> dict[str, Any]:
    v1_only(version, "assistant files")
    a = await svc.get(session, project_id=project_id, assistant_id=assistant_id)
    row = await svc.attach_file(session, a, body.file_id)
    await session.commit()
    return svc.render_file(row)


@router.get("/assistants/{assistant_id}/files")
async def list_assistant_files(assistant_id: str, page: PageDep, session: SessionDep, project_id: ProjectDep,
                               version: VersionDep) -> dict[str, Any]:
    v1_only(version, "assistant files")
    a = await svc.get(session, project_id=project_id, assistant_id=assistant_id)
    stmt = select(AssistantFile).where(AssistantFile.assistant_id == a.id)
    rows, has_more = await fetch_page(session, stmt, seq_col=col(AssistantFile.seq),
                                      id_col=AssistantFile.file_id, page=page)
    return list_body([svc.render_file(r) for r in rows], has_more)


async def _assistant_file(session: SessionDep, project_id: str, assistant_id: str, file_id: str) -> AssistantFile:
    a = await svc.get(session, project_id=project_id, assistant_id=assistant_id)
    row = (await session.exec(select(AssistantFile).where(AssistantFile.assistant_id == a.id,
                                                          AssistantFile.file_id == file_id))).first()
    if row is None:
        raise not_found("assistant file", file_id)
    return row


@router.get("/assistants/{assistant_id}/files/{file_id}")
async def retrieve_assistant_file(assistant_id: str, file_id: str, session: SessionDep, project_id: ProjectDep,
                                  version: VersionDep) -> dict[str, Any]:
    v1_only(version, "assistant files")
    return svc.render_file(await _assistant_file(session, project_id, assistant_id, file_id))


@router.delete("/assistants/{assistant_id}/files/{file_id}")
async def delete_assistant_file(assistant_id: str, file_id: str, session: SessionDep, project_id: ProjectDep,
                                version: VersionDep) -> dict[str, Any]:
    v1_only(version, "assistant files")
    row = await _assistant_file(session, project_id, assistant_id, file_id)
    await session.delete(row)
    await session.flush()
    await svc.sync_retrieval_store(session, await svc.get(session, project_id=project_id,
                                                          assistant_id=assistant_id))
    await session.commit()
    return {"id": file_id, "object": "assistant.file.deleted", "deleted": True}
