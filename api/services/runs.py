"""Runs on the API side: create (taking the thread's lock), cancel, accept tool outputs. The API records each
change, commits, publishes the events it caused, and only then hands the run to a worker; it never calls a
model. Every change goes through the state machine and bumps `step_seq`, which invalidates work in flight."""

import hashlib
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Version
from api.errors import APIError, not_found
from api.schemas.common import ResponseFormatObject
from api.schemas.runs import NamedToolChoice, RunCreate, SubmitToolOutputs, ThreadAndRunCreate
from api.services import threads as thread_svc
from api.shapes import canonical_tools
from shared import runflow
from shared.db import async_engine
from shared.driver_sql import prepare
from shared.ids import new_id, now
from shared.models import ACTIVE_RUN_STATUSES, Run, RunStep, Thread
from shared.rows import from_row, prepared_insert, to_row
from shared.rows import table as _table
from shared.runflow import Applied
from shared.runstate import Event, InvalidTransition, Status

RUN_LIFETIME = 600  # seconds from creation to expiry, as on OpenAI
V2_ONLY_RUN_FIELDS = {"parallel_tool_calls"}


# One round trip: the thread (scoped to the project), locked against concurrent writers, with its active run.
# Run creation and user messages both take this lock, so the check and the write after it cannot interleave
# with another replica's; the partial unique index on run(thread_id) stays the last word for runs.
_LOCK_THREAD = prepare(text(
    "SELECT r.id AS active_run, r.request_hash, r.created_at FROM thread t LEFT JOIN run r ON r.thread_id = t.id "
    f"AND r.status IN ({', '.join(repr(s) for s in ACTIVE_RUN_STATUSES)}) "
    "WHERE t.id = :thread_id AND t.project_id = :project_id FOR UPDATE OF t"), named=True)
# A retry of the request that created the thread's active run gets that run, within this long.
RETRY_WINDOW_SECONDS = 120

_ASSISTANT = prepare(text(
    "SELECT a.id, a.model, a.instructions, a.tools, a.temperature, a.top_p, a.response_format, "
    "COALESCE((SELECT array_agg(f.file_id ORDER BY f.seq) FROM assistant_file f WHERE f.assistant_id = a.id),"
    " '{}') AS file_ids FROM assistant a WHERE a.id = :assistant_id AND a.project_id = :project_id"), named=True)


async def lock_thread(session: AsyncSession, *, project_id: str, thread_id: str) -> Any:
    """Lock the thread row; returns its active run's (id, request_hash, created_at), all None if it has none.
    404 if no such thread."""
    cursor = await _LOCK_THREAD.execute_async(await session.connection(), {"thread_id": thread_id,
                                                                            "project_id": project_id})
    row = await cursor.fetchone()
    if row is None:
        raise not_found("thread", thread_id)
    return row


async def refuse_if_active(session: AsyncSession, thread: Thread) -> None:
    """A user message may not join a thread while one of its runs is active."""
    active = (await lock_thread(session, project_id=thread.project_id, thread_id=thread.id)).active_run
    if active is not None:
        raise APIError(400, f"Can't add messages to {thread.id} while a run {active} is active.",
                       code="thread_locked")


async def load(run_id: str) -> Run | None:
    """The run as stored now, on a connection of its own (for a stream, which holds none)."""
    async with async_engine().connect() as conn:
        row = (await conn.execute(sa_select(_table(Run)).where(_table(Run).c.id == run_id))).first()
    return from_row(Run, row) if row is not None else None


async def get(session: AsyncSession, *, thread: Thread, run_id: str) -> Run:
    row = (await session.exec(select(Run).where(Run.id == run_id, Run.thread_id == thread.id))).first()
    if row is None:
        raise not_found("run", run_id)
    return row


async def get_step(session: AsyncSession, *, run: Run, step_id: str) -> RunStep:
    row = (await session.exec(select(RunStep).where(RunStep.id == step_id, RunStep.run_id == run.id))).first()
    if row is None:
        raise not_found("run step", step_id)
    return row


def _response_format(rf: Any) -> Any:
    if isinstance(rf, ResponseFormatObject):
        return rf.wire()
    return None if rf in (None, "none") else rf


def request_hash(thread_id: str, body: RunCreate | ThreadAndRunCreate, version: Version) -> str:
    """What identifies a create-run request when its client sends it again."""
    raw = f"{version}\n{thread_id}\n{body.model_dump_json(exclude_unset=True)}"
    return hashlib.sha256(raw.encode()).hexdigest()


async def create(session: AsyncSession, *, project_id: str, thread_id: str, body: RunCreate | ThreadAndRunCreate,
                 version: Version, retry: bool = False) -> tuple[Run, bool]:
    """Insert a queued run (the caller commits, then publishes and enqueues). Returns (run, True) instead when
    this request is a client's `retry` of the one that created the thread's active run a moment ago."""
    if version == "v1" and body.model_fields_set & V2_ONLY_RUN_FIELDS:
        name = sorted(body.model_fields_set & V2_ONLY_RUN_FIELDS)[0]
        raise APIError(400, f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")
    digest = request_hash(thread_id, body, version)
    active = await lock_thread(session, project_id=project_id, thread_id=thread_id)
    if retry:
        # The first attempt's run, whether it is still going or (a fast one) has already finished.
        made = (await session.exec(select(Run).where(
            Run.thread_id == thread_id, Run.request_hash == digest, Run.created_at >= now() - RETRY_WINDOW_SECONDS)
            .order_by(col(Run.seq).desc()))).first()
        if made is not None:
            return made, True
    conn = await session.connection()
    cursor = await _ASSISTANT.execute_async(conn, {"assistant_id": body.assistant_id, "project_id": project_id})
    assistant = await cursor.fetchone()
    if assistant is None:
        raise not_found("assistant", body.assistant_id)
    if active.active_run is not None:
        raise _thread_busy(thread_id, active.active_run)
    tools = canonical_tools(body.tools, version) if body.tools is not None else assistant.tools
    created = now()
    run = Run(
        id=new_id("run"), project_id=project_id, thread_id=thread_id, assistant_id=assistant.id,
        created_at=created, status=Status.QUEUED.value, model=body.model or assistant.model,
        instructions=body.instructions if "instructions" in body.model_fields_set else assistant.instructions,
        additional_instructions=getattr(body, "additional_instructions", None), tools=tools,
        file_ids=list(assistant.file_ids), meta=body.metadata,
        temperature=body.temperature if body.temperature is not None else assistant.temperature,
        top_p=body.top_p if body.top_p is not None else assistant.top_p,
        response_format=_response_format(body.response_format) if body.response_format is not None
        else assistant.response_format,
        tool_choice=body.tool_choice.model_dump(exclude_none=True) if isinstance(body.tool_choice, NamedToolChoice)
        else body.tool_choice,
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        max_prompt_tokens=body.max_prompt_tokens, max_completion_tokens=body.max_completion_tokens,
        truncation_strategy=body.truncation_strategy.model_dump() if body.truncation_strategy else None,
        expires_at=created + RUN_LIFETIME, request_hash=digest,
    )
    extra = getattr(body, "additional_messages", None) or []
    if extra:
        thread = Thread(id=thread_id, project_id=project_id, created_at=created)
        for i, message in enumerate(extra):
            await thread_svc.add_message(session, thread=thread, body=message, version=version,
                                         param=f"additional_messages[{i}]")
    try:
        row = to_row(run)
        await prepared_insert(Run, tuple(row)).execute_async(conn, row)
    except IntegrityError as exc:  # the partial unique index: another replica's run won the race
        await session.rollback()
        raise _thread_busy(thread_id, None) from exc
    return run, False


def _thread_busy(thread_id: str, run_id: str | None) -> APIError:
    which = f" {run_id}" if run_id else ""
    return APIError(400, f"Thread {thread_id} already has an active run{which}.", code="thread_locked")


async def apply(session: AsyncSession, run: Run, event: Event, **given: Any) -> Applied:
    """Move `run` through the state machine (shared/runflow.py, the same executor as the workers'); 400 if the
    event does not apply to its status, 409 if a worker changed the run meanwhile (the client may retry)."""
    try:
        applied = await runflow.apply_async(await session.connection(), run, event, **given)
    except InvalidTransition as exc:
        raise APIError(400, _refusal(run, event), code="invalid_run_state") from exc
    if applied is None:
        raise APIError(409, f"Run {run.id} changed while processing this request; please retry.",
                       code="conflict")
    return applied


def _refusal(run: Run, event: Event) -> str:
    if event == Event.CANCEL:
        return f"Cannot cancel run with status '{run.status}'."
    if event == Event.OUTPUTS_SUBMITTED:
        return f"Runs in status \"{run.status}\" do not accept tool outputs."
    return f"Run {run.id} is '{run.status}'."


async def submit_outputs(session: AsyncSession, run: Run, body: SubmitToolOutputs) -> tuple[Applied, RunStep]:
    """Record outputs on the waiting tool_calls step and requeue the run. Outputs must answer exactly the
    calls the run asked for."""
    if run.status != Status.REQUIRES_ACTION.value or not run.required_action:
        raise APIError(400, _refusal(run, Event.OUTPUTS_SUBMITTED), code="invalid_run_state")
    wanted = [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]]
    given = [o.tool_call_id for o in body.tool_outputs]
    dupes = sorted({g for g in given if given.count(g) > 1})
    if dupes:
        raise APIError(400, f"Duplicate tool outputs for tool call(s): {', '.join(dupes)}.", param="tool_outputs")
    unknown = [g for g in given if g not in wanted]
    if unknown:
        raise APIError(400, f"Tool call(s) {', '.join(unknown)} not found in the run's required action; expected "
                       f"outputs for: {', '.join(wanted)}.", param="tool_outputs")
    missing = [w for w in wanted if w not in given]
    if missing:
        raise APIError(400, f"Expected tool outputs for call_ids {wanted}, got {given}. Missing: "
                       f"{', '.join(missing)}.", param="tool_outputs")
    step = (await session.exec(select(RunStep).where(RunStep.run_id == run.id, RunStep.kind == "tool_calls",
                                                     RunStep.status == "in_progress")
                               .order_by(col(RunStep.seq).desc()))).first()
    if step is None:  # cannot happen while the engine records a step before requires_action
        raise APIError(500, "The run's tool call step is missing.", type="server_error")
    outputs = {o.tool_call_id: o.output for o in body.tool_outputs}
    applied = await apply(session, run, Event.OUTPUTS_SUBMITTED)
    calls = [{**c, "function": {**c["function"], "output": outputs.get(c["id"])}} if c.get("type") == "function"
             else c for c in step.step_details["tool_calls"]]
    step.step_details = {"type": "tool_calls", "tool_calls": calls}
    step.status, step.completed_at = "completed", now()
    session.add(step)
    return applied, step

