"""Ingestion for file_search (the `ingest` queue): a vector store file's text is extracted, chunked, embedded and
written to the chunk index, then the file is `completed` (or `failed` with a reason).

Safe to repeat and to kill: a task carries the file's `attempt`; it takes a Postgres advisory lock on (store,
file), removes what an interrupted attempt left, and writes chunks batch by batch. Search reads only `completed`
files, so a half-written file is never seen, and a redelivered task simply starts over. Memory stays bounded: the
blob streams to a temporary file, the text is read page by page and chunks are embedded in small batches.
"""

import json
import logging
import tempfile
from collections.abc import Iterator
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
from worker import chunking, extract

log = logging.getLogger("worker.ingest")

BATCH = 32  # chunks embedded and written together


_LOAD = text("""
    SELECT vsf.status, vsf.attempt, vsf.chunking_strategy, f.filename, f.blob_key
    FROM vector_store_file vsf JOIN file f ON f.id = vsf.file_id
    WHERE vsf.vector_store_id = :vs AND vsf.file_id = :f""")
_STILL_MINE = text("""SELECT 1 FROM vector_store_file WHERE vector_store_id = :vs AND file_id = :f
                      AND attempt = :attempt AND status = 'in_progress' FOR UPDATE""")
_INSERT = text("""INSERT INTO chunk (vector_store_id, file_id, position, text, embedding)
                  VALUES (:vs, :f, :position, :text, CAST(:embedding AS vector))""")
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


def ingest(vector_store_id: str, file_id: str, attempt: int, *, last_try: bool = True) -> str:
    """Index one vector store file; returns what happened (for logs and tests)."""
    key = {"vs": vector_store_id, "f": file_id, "attempt": attempt}
    with sync_engine().connect() as lock_conn:
        if not lock_conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"),
                                 {"k": f"ingest:{vector_store_id}:{file_id}"}).scalar():
            return "busy"  # another worker is on it (e.g. a redelivery racing the original)
        try:
            return _ingest_locked(key, last_try)
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock_all()"))
            lock_conn.commit()


def _ingest_locked(key: dict[str, Any], last_try: bool) -> str:
    with sync_engine().connect() as conn:
        row = conn.execute(_LOAD, key).first()
        if row is None or row.attempt != key["attempt"] or row.status != "in_progress":
            return "stale"
        conn.execute(text("DELETE FROM chunk WHERE vector_store_id = :vs AND file_id = :f"), key)
        copied = conn.execute(_COPY, {**key, "strategy": _json(row.chunking_strategy)}).rowcount
        conn.commit()
    if copied:
        return _finish(key, "completed", None)
    try:
        extract.check_supported(row.filename)
        size, overlap = chunking.strategy_of(row.chunking_strategy)
        with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
            path = Path(tmp) / "file"
            with open(path, "wb") as out:
                for piece in from_settings().read(row.blob_key):
                    out.write(piece)
            written = _index(key, extract.segments(row.filename, path), size, overlap)
        if written is None:
            return "overtaken"
        if written == 0:
            raise extract.ExtractError("invalid_file", "No text could be extracted from the file.")
        return _finish(key, "completed", None)
    except extract.ExtractError as e:
        return _finish(key, "failed", {"code": e.code, "message": e.message})
    except Exception:
        log.exception("ingesting %s into %s failed", key["f"], key["vs"])
        if last_try:
            return _finish(key, "failed", {"code": "server_error", "message": "The file could not be processed."})
        raise


def _index(key: dict[str, Any], segments: Iterator[str], size: int, overlap: int) -> int | None:
    """Write the chunks; None if the file was cancelled, detached or re-queued meanwhile."""
    windows = _Windows(size - overlap)
    written = 0
    stream = chunking.chunks(segments, size, overlap)
    while batch := list(islice(stream, BATCH)):
        vectors = windows.vectors(batch)
        with sync_engine().connect() as conn:
            if conn.execute(_STILL_MINE, key).first() is None:
                conn.rollback()
                return None
            conn.execute(_INSERT, [{**key, "position": c.position, "text": c.text.replace("\x00", ""),
                                    "embedding": embeddings.vector_literal(v)}
                                   for c, v in zip(batch, vectors, strict=True)])
            conn.commit()
        written += len(batch)
    return written


def _finish(key: dict[str, Any], status: str, error: dict[str, str] | None) -> str:
    with sync_engine().connect() as conn:
        if status != "completed":
            conn.execute(text("DELETE FROM chunk WHERE vector_store_id = :vs AND file_id = :f"), key)
        done = conn.execute(_FINISH, {**key, "status": status, "error": _json(error),
                                      "vector_bytes": get_settings().embeddings_dim * 4}).rowcount
        conn.execute(_STORE_USAGE, key)
        if done:
            outbox.vector_store_file_finished(conn, key["vs"], key["f"])  # webhooks, in this transaction
        conn.commit()
    return status if done else "overtaken"


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
