"""Ingestion for file_search (the `ingest` queue): a vector store file's text is read, chunked, embedded and
written to the chunk index, then the file is `completed` (or `failed` with a reason).

What one file may cost is bounded (worker/ingest_limits.py, one setting each): its text is read in a child
process with a memory limit and a deadline (worker/reader.py), after structural checks that stop zip and PDF
bombs before any parsing (worker/extract.py); its tokens are counted while it is read, before anything is
embedded; all its work has a time budget. A file over a bound ends `failed` with `invalid_file` and the reason.

So that no file holds up the others (one tenant's big or hostile upload, another's small one behind it), the
work on a file is divided into tasks, and every task goes to the back of the one `ingest` queue:
1. reading: download, extract, chunk and count tokens (bounded by INGEST_READ_SECONDS), the chunks spooled
   (worker/spool.py: the blob store and a Redis manifest, so that any ingest worker can carry on);
2. embedding, in slices of about INGEST_SLICE_SECONDS (at least one batch of 16 chunks): each slice writes its
   batches and, if chunks remain, enqueues the next slice behind whatever was queued meanwhile. Files in flight
   thus take turns a slice each, and a small file (one slice) waits for at most the slice being worked on and
   the other files queued before it, never for a large file to finish. Most files take one task and are not
   spooled: their chunks stay in memory unless the first slice runs out of time.
Reading is not sliced (a parser cannot be paused): it is what the bounds are for, a bomb failing in well under a
second and 5M tokens taking ~15 s on 2 cores. Fairness is per file in flight, not per project: a tenant with many
files queued gets a turn for each (run more ingest workers, or weigh projects, if that matters).
The worker's memory is bounded whatever the input: the reader's by its limit, the worker's own by the streaming
chunker (segments of at most 64K characters) and one part of chunks at a time.

Safe to repeat and to kill: a task carries the file's `attempt` (and a continuation its `step`); it takes a
Postgres advisory lock on (store, file), and writes chunks batch by batch, each batch in one transaction. A task
that reads the file first removes what an interrupted attempt left; a slice carries on after the last batch
written (the highest position in the index), so a slice killed midway is redelivered and resumes, and a step
already done by another task is stale. The beat's nudge of a file being sliced only enqueues its current step
again (a continuation lost between recording a step and enqueueing the next is thus recovered), so nudges never
multiply the work. Search reads only `completed` files, so a half-written file is never seen.
"""

import contextlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from shared import embeddings
from shared.blobstore import from_settings
from shared.config import get_settings
from shared.db import sync_engine
from shared.webhooks import outbox
from worker import chunking, extract, ingest_limits, reader, spool
from worker.ingest_limits import Limits

log = logging.getLogger("worker.ingest")

BATCH = 16  # chunks embedded and written together (~2 s of the local model: how often a slice checks the time)
BUSY_RETRY_SECONDS = 2.0


_LOAD = text("""
    SELECT vsf.status, vsf.attempt, vsf.chunking_strategy, f.filename, f.blob_key
    FROM vector_store_file vsf JOIN file f ON f.id = vsf.file_id
    WHERE vsf.vector_store_id = :vs AND vsf.file_id = :f""")
_STILL_MINE = text("""SELECT 1 FROM vector_store_file WHERE vector_store_id = :vs AND file_id = :f
                      AND attempt = :attempt AND status = 'in_progress' FOR UPDATE""")
_INSERT = text("""INSERT INTO chunk (vector_store_id, file_id, position, text, embedding)
                  VALUES (:vs, :f, :position, :text, CAST(:embedding AS vector))""")
_WRITTEN = text("SELECT COALESCE(max(position) + 1, 0) FROM chunk WHERE vector_store_id = :vs AND file_id = :f")
# Another store already holds this file chunked the same way: copy its chunks rather than embed again.
_COPY = text("""
    INSERT INTO chunk (vector_store_id, file_id, position, text, embedding)
    SELECT :vs, c.file_id, c.position, c.text, c.embedding FROM chunk c
    WHERE c.file_id = :f AND c.vector_store_id = (
        SELECT o.vector_store_id FROM vector_store_file o
        WHERE o.file_id = :f AND o.vector_store_id <> :vs AND o.status = 'completed'
          AND o.chunking_strategy IS NOT DISTINCT FROM CAST(:strategy AS jsonb) LIMIT 1)""")
_FINISH = text("""
    UPDATE vector_store_file SET status = :status, last_error = CAST(:error AS jsonb),
        usage_bytes = COALESCE((SELECT sum(octet_length(text)) + count(*) * :vector_bytes FROM chunk
                                WHERE vector_store_id = :vs AND file_id = :f), 0)
    WHERE vector_store_id = :vs AND file_id = :f AND attempt = :attempt AND status = 'in_progress'""")
_STORE_USAGE = text("""
    UPDATE vector_store SET usage_bytes = (SELECT COALESCE(sum(usage_bytes), 0) FROM vector_store_file
                                           WHERE vector_store_id = :vs)
    WHERE id = :vs""")


@dataclass(frozen=True)
class Outcome:
    """What a task did (for logs and tests), and the step to enqueue next if the file is not done."""

    status: str  # completed, failed, continue, stale, busy, overtaken
    next_step: int | None = None
    delay: float = 0.0  # seconds before the next step may run


def ingest(vector_store_id: str, file_id: str, attempt: int, *, step: int | None = None,
           last_try: bool = True) -> Outcome:
    """Take one vector store file a task further: read it (if not read yet) and embed a slice of its chunks.
    `step` is the slice a continuation was enqueued for (None: the first task, or a nudge, takes any)."""
    key = {"vs": vector_store_id, "f": file_id, "attempt": attempt}
    with sync_engine().connect() as lock_conn:
        if not lock_conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"),
                                 {"k": f"ingest:{vector_store_id}:{file_id}"}).scalar():
            # Another task is on it (a redelivery racing the original, a nudge). A continuation tries again
            # shortly rather than vanish: if the other task is doing the same step, it will then be stale.
            return Outcome("busy", step, BUSY_RETRY_SECONDS) if step is not None else Outcome("busy")
        try:
            return _ingest_locked(key, step, last_try)
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock_all()"))
            lock_conn.commit()


def _ingest_locked(key: dict[str, Any], step: int | None, last_try: bool) -> Outcome:
    started = time.monotonic()
    limits = ingest_limits.from_settings()
    with sync_engine().connect() as conn:
        row = conn.execute(_LOAD, key).first()
    if row is None or row.attempt != key["attempt"] or row.status != "in_progress":
        spool.drop(key)
        return Outcome("stale")
    size, overlap = chunking.strategy_of(row.chunking_strategy)
    try:
        manifest = spool.load(key)
        first: list[chunking.Chunk] | None = None
        if manifest is None:
            with sync_engine().connect() as conn:
                conn.execute(text("DELETE FROM chunk WHERE vector_store_id = :vs AND file_id = :f"), key)
                copied = conn.execute(_COPY, {**key, "strategy": _json(row.chunking_strategy)}).rowcount
                conn.commit()
            if copied:
                return _finish(key, "completed", None)
            extract.check_supported(row.filename)
            first, manifest = _read(key, row.filename, row.blob_key, size, overlap, limits, started)
            if manifest.chunks == 0:
                raise extract.ExtractError("invalid_file", "No text could be extracted from the file.")
        elif step is None:
            # A nudge (or a duplicate of the first task) for a file being sliced: it does no work itself, which
            # would race the file's own next slice, but enqueues that slice again in case it was lost; of the
            # two, whichever runs first takes the step and the other is stale.
            return Outcome("continue", manifest.step)
        elif step != manifest.step:
            return Outcome("stale")  # another task took this step
        return _slice(key, manifest, first, size - overlap, limits, started)
    except extract.ExtractError as e:
        return _finish(key, "failed", {"code": e.code, "message": e.message})
    except Exception:
        log.exception("ingesting %s into %s failed", key["f"], key["vs"])
        if last_try:
            return _finish(key, "failed", {"code": "server_error", "message": "The file could not be processed."})
        raise


def _read(key: dict[str, Any], filename: str, blob_key: str, size: int, overlap: int, limits: Limits,
          started: float) -> tuple[list[chunking.Chunk], spool.Manifest]:
    """Read the file into chunks, counting its tokens against the cap, within the reading deadline."""
    deadline = started + limits.read_seconds
    writer = spool.Writer(key)
    tokens = 0
    try:
        with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
            path = Path(tmp) / "file"
            with open(path, "wb") as out:
                for piece in from_settings().read(blob_key):
                    out.write(piece)
            with contextlib.closing(reader.segments(filename, path, limits, deadline)) as texts:
                for chunk in chunking.chunks(texts, size, overlap):
                    tokens = chunk.start_token + len(chunk.ids)
                    ingest_limits.check_tokens(tokens, limits)
                    if time.monotonic() > deadline:
                        raise ingest_limits.read_overtime(limits)
                    writer.add(chunk)
        return writer.finish(tokens)
    except BaseException:
        writer.discard()
        raise


def _slice(key: dict[str, Any], manifest: spool.Manifest, first: list[chunking.Chunk] | None, stride: int,
           limits: Limits, started: float) -> Outcome:
    """Embed and write chunks from the last one written on, for about a slice's time (at least a batch)."""
    with sync_engine().connect() as conn:
        done = int(conn.execute(_WRITTEN, key).scalar_one())
    windows = _Windows(stride)
    stream = spool.chunks(key, manifest, done, first)
    while done < manifest.chunks and (batch := list(islice(stream, BATCH))):
        if not _write(key, batch, windows):
            spool.drop(key)
            return Outcome("overtaken")  # cancelled, detached or re-queued meanwhile
        done += len(batch)
        if time.monotonic() - started >= limits.slice_seconds:
            break
    if done >= manifest.chunks:
        return _finish(key, "completed", None)
    if manifest.parts == 1 and first is not None:
        spool.spill(key, first, manifest)  # a one-part file was only in memory: the next slice reads it back
    manifest.spent += time.monotonic() - started
    ingest_limits.check_work(manifest.spent, limits)
    manifest.step += 1
    spool.save(key, manifest)
    return Outcome("continue", manifest.step)


def _write(key: dict[str, Any], batch: list[chunking.Chunk], windows: "_Windows") -> bool:
    """One batch, embedded and written in one transaction; False if the file is no longer this attempt's."""
    vectors = windows.vectors(batch)
    with sync_engine().connect() as conn:
        if conn.execute(_STILL_MINE, key).first() is None:
            conn.rollback()
            return False
        conn.execute(_INSERT, [{**key, "position": c.position, "text": c.text.replace("\x00", ""),
                                "embedding": embeddings.vector_literal(v)}
                               for c, v in zip(batch, vectors, strict=True)])
        conn.commit()
    return True


def _finish(key: dict[str, Any], status: str, error: dict[str, str] | None) -> Outcome:
    """The one place a file's final status (`completed` or `failed`, with its last_error) is written; what
    announces it belongs here. Whatever the attempt spooled goes with it."""
    with sync_engine().connect() as conn:
        if status != "completed":
            conn.execute(text("DELETE FROM chunk WHERE vector_store_id = :vs AND file_id = :f"), key)
        done = conn.execute(_FINISH, {**key, "status": status, "error": _json(error),
                                      "vector_bytes": get_settings().embeddings_dim * 4}).rowcount
        conn.execute(_STORE_USAGE, key)
        if done:
            outbox.vector_store_file_finished(conn, key["vs"], key["f"])  # webhooks, in this transaction
        conn.commit()
    spool.drop(key)
    return Outcome(status if done else "overtaken")


class _Windows:
    """Chunk vectors for the local model, whose input is 256 tokens: a chunk's vector is the normalised mean of
    its windows' vectors. Windows start at multiples of a size that divides the chunk stride, so overlapping
    chunks share them and every token is embedded once, however large the overlap."""

    def __init__(self, stride: int) -> None:
        limit = embeddings.MAX_TOKENS - 2
        self.size = next((w for w in range(min(stride, limit), 63, -1) if stride % w == 0), limit)
        self.cache: dict[tuple[int, int], np.ndarray] = {}

    def vectors(self, batch: list[chunking.Chunk]) -> embeddings.Vector:
        embedder = embeddings.get()
        if not isinstance(embedder, embeddings.LocalMiniLM):
            return embedder.embed([c.text for c in batch])
        tok = embeddings.tokenizer()
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        need: dict[tuple[int, int], list[int]] = {}
        keys_of = []
        for c in batch:
            keys = []
            for off in range(0, len(c.ids), self.size):
                piece = c.ids[off:off + self.size]
                k = (c.start_token + off, len(piece))
                if k not in self.cache and k not in need:
                    need[k] = [cls, *piece, sep]
                keys.append(k)
            keys_of.append(keys)
        if need:
            self.cache.update(zip(need, embedder.embed_ids(list(need.values())), strict=True))
        out = embeddings.normalize(np.stack([np.mean([self.cache[k] for k in keys], axis=0) for keys in keys_of]))
        first_needed = batch[-1].start_token
        self.cache = {k: v for k, v in self.cache.items() if k[0] >= first_needed}
        return out


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
