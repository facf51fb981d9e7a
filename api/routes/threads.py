"""/v1/threads, /v1/threads/{id}/messages and (v1 shape) the message files sub-resource."""

from typing import Any

from fastapi import APIRouter
from sqlmodel import select

from api import dispatch
from api.deps import ProjectDep, SessionDep, VersionDep
from api.errors import not_found
from api.pagination import PageDep, fetch_page, list_body, page_list
from api.routes.assistants import v1_only
from api.schemas.threads import MessageCreate, MessageUpdate, ThreadCreate, ThreadUpdate
from api.services import runs as run_svc
from api.services import threads as svc
from shared.models import Message, Thread

router = APIRouter(tags=["threads"])


@router.post("/threads")
async def create_thread(session: SessionDep, project_id: ProjectDep, version: VersionDep,
                        body: ThreadCreate | None = None) -> dict[str, Any]:
    t = await svc.create(session, project_id=project_id, body=body or ThreadCreate(), version=version)
    await session.commit()
    return svc.render(t, version)


@router.get("/threads")
async def list_threads(page: PageDep, session: SessionDep, project_id: ProjectDep,
                       version: VersionDep) -> dict[str, Any]:
    """The project's threads, newest first by default (the hosted API had this only for its dashboard)."""
    stmt = select(Thread).where(Thread.project_id == project_id)
    rows, has_more = await fetch_page(session, stmt, seq_col=Thread.seq, id_col=Thread.id, page=page)
    return list_body([svc.render(t, version) for t in rows], has_more)


@router.get("/threads/{thread_id}")
async def retrieve_thread(thread_id: str, session: SessionDep, project_id: ProjectDep,
                          version: VersionDep) -> dict[str, Any]:
    return svc.render(await svc.get(session, project_id=project_id, thread_id=thread_id), version)


@router.post("/threads/{thread_id}")
async def modify_thread(thread_id: str, session: SessionDep, project_id: ProjectDep, version: VersionDep,
                        body: ThreadUpdate | None = None) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    await svc.update(session, t=t, body=body or ThreadUpdate(), version=version)
    await session.commit()
    return svc.render(t, version)


@router.delete("/threads/{thread_id}")
async def delete_thread(thread_id: str, session: SessionDep, project_id: ProjectDep,
                        version: VersionDep) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    await session.delete(t)  # messages go with it (ON DELETE CASCADE)
    await session.commit()
    await dispatch.end_sandbox_session(thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}


@router.post("/threads/{thread_id}/messages")
async def create_message(thread_id: str, body: MessageCreate, session: SessionDep, project_id: ProjectDep,
                         version: VersionDep) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    await run_svc.refuse_if_active(session, t)
    m = await svc.add_message(session, thread=t, body=body, version=version)
    await session.commit()
    return svc.render_message(m, version)


@router.get("/threads/{thread_id}/messages")
async def list_messages(thread_id: str, page: PageDep, session: SessionDep, project_id: ProjectDep,
                        version: VersionDep, run_id: str | None = None) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    stmt = select(Message).where(Message.thread_id == t.id)
    if run_id:
        stmt = stmt.where(Message.run_id == run_id)
    rows, has_more = await fetch_page(session, stmt, seq_col=Message.seq, id_col=Message.id, page=page)
    return list_body([svc.render_message(m, version) for m in rows], has_more)


@router.get("/threads/{thread_id}/messages/{message_id}")
async def retrieve_message(thread_id: str, message_id: str, session: SessionDep, project_id: ProjectDep,
                           version: VersionDep) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    return svc.render_message(await svc.get_message(session, thread=t, message_id=message_id), version)


@router.post("/threads/{thread_id}/messages/{message_id}")
async def modify_message(thread_id: str, message_id: str, body: MessageUpdate, session: SessionDep,
                         project_id: ProjectDep, version: VersionDep) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    m = await svc.get_message(session, thread=t, message_id=message_id)
    if "metadata" in body.model_fields_set:
        m.meta = body.metadata
        session.add(m)
    await session.commit()
    return svc.render_message(m, version)


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_message(thread_id: str, message_id: str, session: SessionDep, project_id: ProjectDep,
                         version: VersionDep) -> dict[str, Any]:
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    m = await svc.get_message(session, thread=t, message_id=message_id)
    await session.delete(m)
    await session.commit()
    return {"id": message_id, "object": "thread.message.deleted", "deleted": True}


@router.get("/threads/{thread_id}/messages/{message_id}/files")
async def list_message_files(thread_id: str, message_id: str, page: PageDep, session: SessionDep,
                             project_id: ProjectDep, version: VersionDep) -> dict[str, Any]:
    v1_only(version, "message files")
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    m = await svc.get_message(session, thread=t, message_id=message_id)
    ids, has_more = page_list([a["file_id"] for a in m.attachments], page, key=lambda f: f)
    return list_body([svc.render_message_file(m, f) for f in ids], has_more)


@router.get("/threads/{thread_id}/messages/{message_id}/files/{file_id}")
async def retrieve_message_file(thread_id: str, message_id: str, file_id: str, session: SessionDep,
                                project_id: ProjectDep, version: VersionDep) -> dict[str, Any]:
    v1_only(version, "message files")
    t = await svc.get(session, project_id=project_id, thread_id=thread_id)
    m = await svc.get_message(session, thread=t, message_id=message_id)
    if file_id not in [a["file_id"] for a in m.attachments]:
        raise not_found("message file", file_id)
    return svc.render_message_file(m, file_id)
