"""Streaming multipart/form-data for `POST /files`: the file part goes straight to the blob store as it
arrives, so a 512 MB upload never sits in memory (nor in a spooled temp file), and an oversize upload is
cut off as soon as it crosses the limit."""

from dataclasses import dataclass, field

import anyio
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from api.errors import APIError
from shared.blobstore import BlobStore, BlobWriter

_MAX_FIELD = 64 * 1024  # non-file fields (purpose, …) are small


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    size: int = 0
    writer: BlobWriter | None = None


def too_large(limit: int) -> APIError:
    return APIError(413, f"File is too large. The maximum file size is {limit // (1024 * 1024)} MB.",
                    param="file", code="file_too_large")


@dataclass
class _Part:
    """The multipart part being parsed."""

    headers: dict[bytes, bytes] = field(default_factory=dict)
    hfield: bytes = b""
    hvalue: bytes = b""
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)

    @property
    def is_file(self) -> bool:
        return self.name == "file" and self.filename is not None

    def reset(self) -> None:
        self.headers, self.name, self.filename = {}, "", None


async def receive_upload(request: Request, store: BlobStore, blob_key: str, limit: int) -> Upload:
    """Parse the request body; the `file` part is written to `blob_key` (not committed: the caller commits
    once the database row is in place, or aborts)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise APIError(400, f"Invalid Content-Type header ({request.headers.get('content-type')}), expected "
                       "multipart/form-data.", code="invalid_content_type")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _MAX_FIELD * 4:
        raise too_large(limit)

    up = Upload()
    part = _Part()
    pending: list[bytes] = []  # file bytes parsed from the current network chunk, written off-loop

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.hfield += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.hvalue += data[start:end]

    def on_header_end() -> None:
        part.headers[part.hfield.lower()] = part.hvalue
        part.hfield, part.hvalue = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        fname = disp.get(b"filename")
        part.filename = fname.decode("utf-8", "replace") if fname is not None else None
        part.value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.is_file:
            up.size += end - start
            if up.size > limit:
                raise too_large(limit)
            pending.append(data[start:end])
        else:
            part.value.extend(data[start:end])
            if len(part.value) > _MAX_FIELD:
                raise APIError(400, f"Form field '{part.name}' is too long.", param=part.name)

    def on_part_end() -> None:
        if part.is_file:
            up.filename = part.filename
        elif part.name:
            up.fields[part.name] = part.value.decode("utf-8", "replace")
        part.reset()

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    }, max_header_count=16)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if pending:
                if up.writer is None:
                    up.writer = await anyio.to_thread.run_sync(store.writer, blob_key)
                data = b"".join(pending)
                pending.clear()
                await anyio.to_thread.run_sync(up.writer.write, data)
        parser.finalize()
    except APIError:
        await _abort(up)
        raise
    except Exception as exc:  # the multipart library's parse errors
        await _abort(up)
        raise APIError(400, f"Could not parse multipart form: {exc}", code="invalid_multipart") from exc
    if up.filename is not None and up.writer is None:  # an empty file still gets a blob
        up.writer = await anyio.to_thread.run_sync(store.writer, blob_key)
    return up


async def _abort(up: Upload) -> None:
    if up.writer is not None:
        await anyio.to_thread.run_sync(up.writer.abort)
        up.writer = None
