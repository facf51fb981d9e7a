"""/v1/threads/{id}/runs, /v1/threads/runs (create thread and run), cancel, tool outputs, run steps."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from sqlmodel import select

from api import sse
from api.deps import ProjectDep, SessionDep, VersionDep
from api.dispatch import DEPENDENCY_ERRORS, after_commit, enqueue_advance, publish, redis_client
from api.errors import APIError
from api.pagination import PageDep, fetch_page, list_body
from api.relay import ENTRY_ID
from api.schemas.runs import RunCreate, RunUpdate, SubmitToolOutputs, ThreadAndRunCreate
from api.schemas.threads import ThreadCreate
from api.services import runs as svc
from api.services import threads as thread_svc
from shared import events, wire
from shared.models import Run, RunStep
from shared.runstate import Event

router = APIRouter(tags=["runs"])
log = logging.getLogger("api.runs")


async def _started(run: Run, version: VersionDep, stream: bool | None, replayed: bool = False,
                   before: list[tuple[str, Any]] | None = None) -> dict[str, Any] | StreamingResponse:
    """After the commit: announce the run, hand it to a worker, answer (as JSON or as a stream).

    Should Redis fail here, the run is safe in Postgres and the beat's sweep enqueues it: a plain answer is still
    given; a stream cannot be, so the client gets a 503 and its retry (`replayed`) streams the same run."""
    if replayed:
        if stream:
            return sse.stream(run.id, version, after="0-0")
        return wire.run(run, version)
    body = wire.run(run)
    try:
        first = await publish(run.id, [*(before or []), ("thread.run.created", body), ("thread.run.queued", body)])
        await enqueue_advance(run.id, run.step_seq)
    except DEPENDENCY_ERRORS:
        if stream:
            raise
        log.warning("run %s: not announced or enqueued (Redis unavailable); the sweep will enqueue it", run.id)
        return wire.run(run, version)
    if stream:
        return sse.stream(run.id, version, start=first)
    return wire.run(run, version)


async def _stream_store_answers() -> None:
    """A streamed create needs Redis for its answer: asked first, so that while Redis is away such a create is a
    503 with nothing written, and the SDK's retry of it makes no second run (or thread)."""
    await redis_client().ping()


@router.post("/threads/{thread_id}/runs", response_model=None)
async def create_run(thread_id: str, body: RunCreate, session: SessionDep, project_id: ProjectDep,
                     version: VersionDep,
                     x_stainless_retry_count: Annotated[int, Header()] = 0) -> dict[str, Any] | StreamingResponse:
    # The official SDKs say when a request is their retry (after a timeout or a 5xx whose answer was lost): such
    # a retry of the create that made the thread's active run gets that run, not "already has an active run".
    if body.stream:
        await _stream_store_answers()
    run, replayed = await svc.create(session, project_id=project_id, thread_id=thread_id, body=body,
                                     version=version, retry=x_stainless_retry_count > 0)
    await session.commit()
    return await _started(run, version, body.stream, replayed)


@router.post("/threads/runs", response_model=None)
async def create_thread_and_run(body: ThreadAndRunCreate, session: SessionDep, project_id: ProjectDep,
                                version: VersionDep) -> dict[str, Any] | StreamingResponse:
    if body.stream:
        await _stream_store_answers()
    thread_body = body.thread or ThreadCreate()
    if body.tool_resources is not None:
        thread_body = thread_body.model_copy(update={
            "tool_resources": body.tool_resources.over(thread_body.tool_resources)})
    t = await thread_svc.create(session, project_id=project_id, body=thread_body, version=version)
    run, _ = await svc.create(session, project_id=project_id, thread_id=t.id, body=body, version=version)
    await session.commit()
    return await _started(run, version, body.stream, before=[("thread.created", thread_svc.render(t, "v2"))])


@router.get("/threads/{thread_id}/runs")
async def list_runs(thread_id: str, page: PageDep, session: SessionDep, project_id: ProjectDep,
                    version: VersionDep) -> dict[str, Any]:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    rows, has_more = await fetch_page(session, select(Run).where(Run.thread_id == t.id), seq_col=Run.seq,
                                      id_col=Run.id, page=page)
    return list_body([wire.run(r, version) for r in rows], has_more)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def retrieve_run(thread_id: str, run_id: str, session: SessionDep, project_id: ProjectDep,
                       version: VersionDep) -> dict[str, Any]:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    return wire.run(await svc.get(session, thread=t, run_id=run_id), version)


@router.post("/threads/{thread_id}/runs/{run_id}")
async def modify_run(thread_id: str, run_id: str, body: RunUpdate, session: SessionDep, project_id: ProjectDep,
                     version: VersionDep) -> dict[str, Any]:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    run = await svc.get(session, thread=t, run_id=run_id)
    if "metadata" in body.model_fields_set:
        run.meta = body.metadata
        session.add(run)
        await session.commit()
    return wire.run(run, version)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(thread_id: str, run_id: str, session: SessionDep, project_id: ProjectDep,
                     version: VersionDep) -> dict[str, Any]:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    run = await svc.get(session, thread=t, run_id=run_id)
    applied = await svc.apply(session, run, Event.CANCEL)
    await session.commit()
    try:
        # A worker mid-call sees this flag and stops; whatever it had in flight is discarded.
        await redis_client().set(events.cancel_key(run.id), b"1", ex=events.ACTIVE_RETENTION_SECONDS)
        await after_commit(run.id, applied)
    except DEPENDENCY_ERRORS:  # the cancel is recorded: the sweep confirms it, and a late answer is discarded
        log.warning("run %s: cancel not announced (Redis unavailable); the sweep will finish it", run.id)
    return wire.run(applied.run, version)


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=None)
async def submit_tool_outputs(thread_id: str, run_id: str, body: SubmitToolOutputs, session: SessionDep,
                              project_id: ProjectDep, version: VersionDep) -> dict[str, Any] | StreamingResponse:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    run = await svc.get(session, thread=t, run_id=run_id)
    applied, step = await svc.submit_outputs(session, run, body)
    await session.commit()
    try:
        first = await after_commit(run.id, applied, [("thread.run.step.completed", wire.step(step))])
    except DEPENDENCY_ERRORS:
        if body.stream:
            raise
        log.warning("run %s: outputs not announced (Redis unavailable); the sweep will enqueue it", run.id)
        return wire.run(applied.run, version)
    if body.stream:
        return sse.stream(run.id, version, start=first)
    return wire.run(applied.run, version)


@router.get("/threads/{thread_id}/runs/{run_id}/events", response_model=None)
async def resume_events(thread_id: str, run_id: str, session: SessionDep, project_id: ProjectDep,
                        version: VersionDep, after: str | None = None,
                        last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Extension (not in OpenAI's API): replay a run's events after `Last-Event-ID` (or `?after=`), then follow."""
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    run = await svc.get(session, thread=t, run_id=run_id)
    cursor = last_event_id or after or "0-0"
    if not ENTRY_ID.fullmatch(cursor):
        raise APIError(400, f"Invalid event id '{cursor[:64]}': expected one this stream sent (like 1700000000000-0).",
                       param="Last-Event-ID" if last_event_id else "after", code="invalid_value")
    return sse.stream(run.id, version, after=cursor)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_steps(thread_id: str, run_id: str, page: PageDep, session: SessionDep, project_id: ProjectDep,
                     version: VersionDep) -> dict[str, Any]:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    run = await svc.get(session, thread=t, run_id=run_id)
    rows, has_more = await fetch_page(session, select(RunStep).where(RunStep.run_id == run.id),
                                      seq_col=RunStep.seq, id_col=RunStep.id, page=page)
    return list_body([wire.step(s, version) for s in rows], has_more)


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def retrieve_step(thread_id: str, run_id: str, step_id: str, session: SessionDep, project_id: ProjectDep,
                        version: VersionDep) -> dict[str, Any]:
    t = await thread_svc.get(session, project_id=project_id, thread_id=thread_id)
    run = await svc.get(session, thread=t, run_id=run_id)
    return wire.step(await svc.get_step(session, run=run, step_id=step_id), version)
