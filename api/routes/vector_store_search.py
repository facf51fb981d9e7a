"""/v1/vector_stores/{id}/search and /v1/vector_stores/{id}/files/{file_id}/content: the vector store API's
Responses-era additions. Search is the hybrid search runs use (worker/retrieval.py) plus attribute filters; a file's
content is its text as ingestion parses it (worker/extract.py), streamed page by page."""

import contextlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlmodel import select
from starlette.background import BackgroundTask

from api.deps import ProjectDep, SessionDep
from api.errors import APIError, not_found
from api.schemas.vector_stores import VectorStoreSearch
from api.services import files as file_svc
from api.services import vector_stores as svc
from shared.blobstore import from_settings
from shared.config import get_settings
from shared.db import sync_engine
from shared.models import VectorStoreFile
from worker import extract, ingest_limits, reader, retrieval, store_search

router = APIRouter(tags=["vector_stores"])
log = logging.getLogger("api.vector_store_search")


def _search(project_id: str, vector_store_id: str, queries: list[str], limit: int, threshold: float,
            where: retrieval.Where | None) -> list[store_search.Result]:
    """In a worker thread: embedding the queries is CPU work, and the search runs on a sync connection."""
    with sync_engine().connect() as conn:
        found = store_search.search_store(conn, project_id=project_id, vector_store_id=vector_store_id,
                                          queries=queries, limit=limit, score_threshold=threshold, where=where)
        conn.commit()
    return found


@router.post("/vector_stores/{vector_store_id}/search")
async def search_vector_store(vector_store_id: str, body: VectorStoreSearch, session: SessionDep,
                              project_id: ProjectDep) -> dict[str, Any]:
    vs = await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    try:
        where = store_search.compile_filters(body.filters) if body.filters is not None else None
    except store_search.FilterError as e:
        raise APIError(400, e.message, param=e.param, code="invalid_value") from e
    queries = [body.query] if isinstance(body.query, str) else list(body.query)
    if body.rewrite_query:
        queries = [store_search.rewrite(q) for q in queries]
    threshold = float((body.ranking_options and body.ranking_options.score_threshold) or 0.0)
    await session.commit()  # nothing of the session is needed while the search runs on its own connection
    results = await anyio.to_thread.run_sync(_search, project_id, vs.id, queries, body.max_num_results, threshold,
                                             where)
    return {"object": "vector_store.search_results.page", "search_query": queries,
            "data": [{"file_id": r.file_id, "filename": r.filename, "score": r.score, "attributes": r.attributes,
                      "content": [{"type": "text", "text": r.text}]} for r in results],
            "has_more": False, "next_page": None}


def _download(blob_key: str) -> tempfile.TemporaryDirectory[str]:
    """The blob, copied to a temporary file chunk by chunk (a read error is a plain error response, not a cut-off
    page). The directory goes when the page has been sent, or with the response if it never is."""
    tmp = tempfile.TemporaryDirectory(prefix="content-")
    with open(Path(tmp.name) / "file", "wb") as out:
        for piece in from_settings().read(blob_key):
            out.write(piece)
    return tmp


PARALLEL_PARSES = 2
PARSE_WAIT_SECONDS = 10.0
_PARSING = threading.BoundedSemaphore(PARALLEL_PARSES)


class _Slot:
    """A taken parsing slot, given back once whichever path gets there first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = True

    def free(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                _PARSING.release()


def _content_page(filename: str, tmp: tempfile.TemporaryDirectory[str], slot: _Slot) -> Iterator[bytes]:
    """The page, as JSON produced piece by piece (iterated in a worker thread by the response): the file is parsed a
    page or block at a time, so it is never held in memory whole. Frees its parsing slot when done."""
    with contextlib.ExitStack() as done, tmp:
        done.callback(slot.free)
        yield b'{"object":"vector_store.file_content.page","data":['
        first = True
        try:
            # Parsed in a child process with the ingestion's bounds (memory, time, zip and PDF bombs): a hostile
            # file costs the API no more than it costs an ingest worker.
            limits = ingest_limits.from_settings()
            for segment in reader.segments(filename, Path(tmp.name) / "file", limits,
                                           time.monotonic() + get_settings().ingest_read_seconds):
                if segment:
                    yield (b"" if first else b",") + json.dumps({"type": "text", "text": segment}).encode()
                    first = False
        except extract.ExtractError:
            pass  # a file file_search cannot read has no parsed content (its vector store file says why)
        except Exception:
            log.exception("parsing %s for its content failed", filename)
        yield b'],"has_more":false,"next_page":null}'


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content")
async def vector_store_file_content(vector_store_id: str, file_id: str, session: SessionDep,
                                    project_id: ProjectDep) -> StreamingResponse:
    await svc.get(session, project_id=project_id, vector_store_id=vector_store_id)
    attached = (await session.exec(select(VectorStoreFile.file_id).where(
        VectorStoreFile.vector_store_id == vector_store_id, VectorStoreFile.file_id == file_id))).first()
    if attached is None:
        raise not_found("vector store file", file_id)
    f = await file_svc.get(session, project_id=project_id, file_id=file_id)
    # Each page costs a copy of the blob on local disk and a parser process of up to INGEST_READ_MEMORY_MB: only a
    # few at once per API process; more wait a little, then are asked to come back.
    if not await anyio.to_thread.run_sync(_PARSING.acquire, True, PARSE_WAIT_SECONDS):
        raise APIError(503, "Too many file contents are being read right now; please retry shortly.",
                       type="server_error", code="service_unavailable", retry_after=5)
    slot = _Slot()
    try:
        tmp = await anyio.to_thread.run_sync(_download, f.blob_key)
    except BaseException:
        slot.free()
        raise
    # Freed when the page has been read, or after the response if it never was (the client went away).
    return StreamingResponse(_content_page(f.filename, tmp, slot), media_type="application/json",
                             background=BackgroundTask(slot.free))
