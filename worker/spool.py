"""A file's chunks between reading and embedding, so that embedding can be done in slices, each its own task on
any ingest worker: the chunks (text and token ids) in parts of PART in the blob store (shared by every worker),
and a small manifest in Redis (how many chunks and parts, which slice is next, the work spent so far).

A file whose chunks fit in one part does not touch the store unless its first slice runs out of time: its only
part stays in memory and is embedded by the task that read it. The spool of an attempt is removed when the file
is finished or found stale.
Losing the manifest (a Redis flush) costs only time: the next task finds none and reads the file again.
"""

import base64
import json
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from shared import events
from shared.blobstore import BlobStore
from shared.blobstore import from_settings as blob_store
from worker.chunking import Chunk

PART = 128  # chunks per part (~0.5 MB compressed, ~5 MB in memory): few enough store writes, small enough to hold
TTL = 2 * 86400  # seconds a manifest outlives its last slice (a slice normally follows within seconds)


@dataclass
class Manifest:
    chunks: int
    parts: int
    tokens: int
    step: int = 0  # slices done: a task for another step is stale
    spent: float = 0.0  # seconds of work on the file so far (reading and slices)


@lru_cache
def _store() -> BlobStore:
    return blob_store()


@lru_cache
def _redis() -> Any:
    return events.sync_client()


def _manifest_key(key: dict[str, Any]) -> str:
    return f"ingest:spool:{key['vs']}:{key['f']}:{key['attempt']}"


def _part_key(key: dict[str, Any], n: int) -> str:
    return f"ingest-spool/{key['vs']}.{key['f']}.{key['attempt']}.{n}"


def encode(chunks: list[Chunk]) -> bytes:
    lines = (json.dumps({"p": c.position, "s": c.start_token, "t": c.text,
                         "i": base64.b64encode(array("I", c.ids).tobytes()).decode()}) for c in chunks)
    return zlib.compress("\n".join(lines).encode(), 1)


def decode(data: bytes) -> list[Chunk]:
    out = []
    for line in zlib.decompress(data).decode().splitlines():
        c = json.loads(line)
        ids = array("I")
        ids.frombytes(base64.b64decode(c["i"]))
        out.append(Chunk(c["p"], c["s"], c["t"], ids.tolist()))
    return out


class Writer:
    """Takes a file's chunks in order; parts go to the store once there is more than one."""

    def __init__(self, key: dict[str, Any]) -> None:
        self.key = key
        self.first: list[Chunk] = []  # part 0, kept for the first slice
        self.current: list[Chunk] = []
        self.written = 0  # parts in the store
        self.count = 0

    def add(self, chunk: Chunk) -> None:
        if len(self.current) == PART:
            if self.written == 0:
                self.first = self.current
            self._flush()
        self.current.append(chunk)
        self.count += 1

    def _flush(self) -> None:
        _write_part(self.key, self.written, self.current)
        self.written += 1
        self.current = []

    def finish(self, tokens: int) -> tuple[list[Chunk], Manifest]:
        """Part 0 (in memory) and the manifest, saved if there is more than one part."""
        if self.written == 0:
            return self.current, Manifest(chunks=self.count, parts=1 if self.count else 0, tokens=tokens)
        self._flush()
        manifest = Manifest(chunks=self.count, parts=self.written, tokens=tokens)
        save(self.key, manifest)
        return self.first, manifest

    def discard(self) -> None:
        for n in range(self.written):
            _store().delete(_part_key(self.key, n))


def spill(key: dict[str, Any], only: list[Chunk], manifest: Manifest) -> None:
    """Spool a one-part file after all (its first slice ran out of time): its part, then its manifest."""
    _write_part(key, 0, only)
    save(key, manifest)


def _write_part(key: dict[str, Any], n: int, chunks: list[Chunk]) -> None:
    writer = _store().writer(_part_key(key, n))
    try:
        writer.write(encode(chunks))
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def chunks(key: dict[str, Any], manifest: Manifest, start: int, first: list[Chunk] | None) -> Iterator[Chunk]:
    """The spooled chunks from position `start` on (part 0 from memory when given)."""
    for n in range(start // PART, manifest.parts):
        part = first if n == 0 and first is not None else decode(b"".join(_store().read(_part_key(key, n))))
        yield from (c for c in part if c.position >= start)


def load(key: dict[str, Any]) -> Manifest | None:
    raw = _redis().get(_manifest_key(key))
    return Manifest(**json.loads(raw)) if raw else None


def save(key: dict[str, Any], manifest: Manifest) -> None:
    _redis().set(_manifest_key(key), json.dumps(asdict(manifest)), ex=TTL)


def drop(key: dict[str, Any]) -> None:
    """Remove what this attempt spooled (nothing if it spooled nothing, or its manifest is gone)."""
    manifest = load(key)
    if manifest is None:
        return
    for n in range(manifest.parts):
        _store().delete(_part_key(key, n))
    _redis().delete(_manifest_key(key))
