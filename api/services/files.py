"""File objects: metadata rows in Postgres, bytes in the blob store."""

from collections.abc import Iterable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import APIError, file_not_found
from shared.models import File

# Purposes a client may upload with: the latest spec's list less `evals`, which the File object cannot
# carry; `assistants_output` is ours to create.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")
# Purposes whose files an assistant, thread or message may reference.
ASSISTANT_PURPOSES = ("assistants", "assistants_output", "vision", "user_data")


async def get(session: AsyncSession, *, project_id: str, file_id: str) -> File:
    row = (await session.exec(select(File).where(File.id == file_id, File.project_id == project_id))).first()
    if row is None:
        raise file_not_found(file_id)
    return row


async def require_usable(session: AsyncSession, *, project_id: str, file_ids: Iterable[str], param: str) -> None:
    """Every id must be a file of this project with a purpose assistants can read, else a 400 on `param`."""
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return
    rows = (await session.exec(select(File).where(col(File.id).in_(wanted),
                                                  File.project_id == project_id))).all()
    found = {r.id: r for r in rows}
    for fid in wanted:
        if fid not in found:
            raise APIError(400, f"Invalid '{param}': no file found with id '{fid}'.", param=param,
                           code="invalid_value")
        if found[fid].purpose not in ASSISTANT_PURPOSES:
            raise APIError(400, f"Invalid '{param}': file '{fid}' has purpose '{found[fid].purpose}'; files used "
                           f"by assistants must have purpose 'assistants'.", param=param, code="invalid_value")


def render(f: File) -> dict[str, object]:
    # `status`/`status_details` are deprecated; status_details is left out when there is nothing to say.
    return {"id": f.id, "object": "file", "bytes": f.bytes, "created_at": f.created_at, "filename": f.filename,
            "purpose": f.purpose, "status": f.status}
