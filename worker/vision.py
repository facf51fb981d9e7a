"""Images in user messages, as the model reads them: an `image_file` part becomes a Chat Completions `image_url`
part whose URL is a `data:` URL of the file's bytes (its media type read from them), `detail` passed through.

Runs where the prompt is built — in a worker that soon serves many runs per process — so it stays bounded: one
query for the files' rows (its connection handed back before any blob is read), each image read only up to
IMAGE_MAX_BYTES, and at most PROMPT_IMAGE_BYTES inlined per prompt, newest images first. What cannot be shown (a
deleted file, an oversized one, over the budget) becomes a short note in its place, so the model knows an image
was there.
"""

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from shared import images
from shared.blobstore import from_settings
from shared.config import get_settings
from shared.db import sync_engine

PROMPT_IMAGE_BYTES = 50 * 1024 * 1024  # of image files inlined into one prompt (base64 adds a third)


@dataclass
class FileRef:
    blob_key: str
    size: int


Loader = Callable[[str, list[str]], dict[str, FileRef]]
Reader = Callable[[str, int], bytes | None]


def load_files(project_id: str, file_ids: list[str]) -> dict[str, FileRef]:
    with sync_engine().connect() as conn:
        rows = conn.execute(text("SELECT id, blob_key, bytes FROM file WHERE id = ANY(:ids) AND project_id = :p"),
                            {"ids": file_ids, "p": project_id}).all()
    return {r.id: FileRef(r.blob_key, r.bytes) for r in rows}


def read_blob(blob_key: str, limit: int) -> bytes | None:
    """The blob's bytes, or None if it is larger than `limit` (not read further than that)."""
    out = bytearray()
    chunks = from_settings().read(blob_key)
    try:
        for chunk in chunks:
            out += chunk
            if len(out) > limit:
                return None
    finally:
        chunks.close()  # type: ignore[attr-defined]
    return bytes(out)


def _refs(messages: list[dict[str, Any]]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(message index, part index, image_file) of every image_file part, newest message first."""
    for mi in range(len(messages) - 1, -1, -1):
        content = messages[mi].get("content")
        if isinstance(content, list):
            for pi, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_file":
                    yield mi, pi, part["image_file"]


def _note(file_id: str, why: str) -> dict[str, Any]:
    return {"type": "text", "text": f"[image {file_id} {why}]"}


def inline(messages: list[dict[str, Any]], project_id: str, *, load: Loader = load_files,
           read: Reader = read_blob) -> list[dict[str, Any]]:
    """`messages` with every `image_file` part replaced by an inlined image (or a note); the input is not changed."""
    refs = list(_refs(messages))
    if not refs:
        return messages
    files = load(project_id, list(dict.fromkeys(ref["file_id"] for _, _, ref in refs)))
    limit, budget = get_settings().image_max_bytes, PROMPT_IMAGE_BYTES
    out = [dict(m, content=list(m["content"])) if isinstance(m.get("content"), list) else m for m in messages]
    for mi, pi, ref in refs:
        file_id = ref["file_id"]
        f = files.get(file_id)
        data = None
        if f is None:
            part = _note(file_id, "is no longer available")
        elif f.size > limit:
            part = _note(file_id, "is too large to show")
        elif f.size > budget:
            part = _note(file_id, "is left out: the conversation holds too many images")
        else:
            data = read(f.blob_key, limit)
            media = images.sniff(data[:images.HEAD_BYTES]) if data is not None else None
            part = _note(file_id, "could not be read as an image") if media is None else _image(media, data, ref)
            budget -= f.size
        out[mi]["content"][pi] = part
    return out


def _image(media: str, data: bytes | None, ref: dict[str, Any]) -> dict[str, Any]:
    url = f"data:{media};base64," + base64.b64encode(data or b"").decode()
    image_url: dict[str, Any] = {"url": url}
    if ref.get("detail"):
        image_url["detail"] = ref["detail"]
    return {"type": "image_url", "image_url": image_url}
