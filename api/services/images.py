"""`image_file` parts of a message: the file must be this project's, uploaded for vision or assistants, an image
(PNG, JPEG, GIF, WEBP, by its bytes) and no larger than IMAGE_MAX_BYTES — refused at message creation with a 400
naming the part, rather than failing the run later."""

from collections.abc import Iterator
from typing import Any

import anyio
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import APIError
from shared import images
from shared.blobstore import from_settings
from shared.config import get_settings
from shared.models import File


def _image_parts(content: Any) -> Iterator[tuple[int, str]]:
    if isinstance(content, str):
        return
    for i, part in enumerate(content):
        if part.type == "image_file" and part.image_file is not None:
            yield i, part.image_file.file_id


def _head(blob_key: str) -> bytes:
    chunks = from_settings().read(blob_key)
    try:
        return next(chunks, b"")[:images.HEAD_BYTES]
    finally:
        chunks.close()  # type: ignore[attr-defined]


async def require(session: AsyncSession, *, project_id: str, content: Any, prefix: str = "") -> None:
    parts = list(_image_parts(content))
    if not parts:
        return
    rows = (await session.exec(select(File).where(col(File.id).in_([f for _, f in parts]),
                                                  File.project_id == project_id))).all()
    found = {r.id: r for r in rows}
    limit = get_settings().image_max_bytes
    for i, file_id in parts:
        param = f"{prefix}content[{i}].image_file.file_id"
        f = found.get(file_id)
        if f is None:
            raise APIError(400, f"Invalid '{param}': no file found with id '{file_id}'.", param=param,
                           code="invalid_value")
        if f.purpose not in images.IMAGE_PURPOSES:
            raise APIError(400, f"Invalid '{param}': file '{file_id}' has purpose '{f.purpose}'; image_file needs a "
                           "file uploaded with purpose 'vision' (or 'assistants').", param=param,
                           code="invalid_value")
        if f.bytes > limit:
            raise APIError(400, f"Invalid '{param}': file '{file_id}' is {f.bytes} bytes; images may be at most "
                           f"{limit} bytes.", param=param, code="invalid_image")
        if images.sniff(await anyio.to_thread.run_sync(_head, f.blob_key)) is None:
            raise APIError(400, f"Invalid '{param}': file '{file_id}' ({f.filename}) is not an image; image_file "
                           "accepts PNG, JPEG, GIF and WEBP files.", param=param, code="invalid_image")
