"""Where file bytes live. A small interface with two implementations: a local directory (a shared volume
in a cluster) and any S3-compatible store. Writes stream chunk by chunk; nothing holds a whole file."""

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

from shared.config import Settings, get_settings

CHUNK = 1024 * 1024


class BlobWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self, key: str) -> BlobWriter: ...
    def read(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...


class _LocalWriter:
    """Writes to a temp file beside the target and renames on commit: readers never see a partial file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        self._file = os.fdopen(fd, "wb")
        self._tmp, self._path = Path(tmp), path

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._tmp.replace(self._path)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def writer(self, key: str) -> BlobWriter:
        return _LocalWriter(self._path(key))

    def read(self, key: str) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class _S3Writer:
    """Multipart upload in 8 MiB parts (S3's minimum part is 5 MiB)."""

    PART = 8 * 1024 * 1024

    def __init__(self, client: object, bucket: str, key: str) -> None:
        self._c, self._bucket, self._key = client, bucket, key
        self._upload = self._c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]  # type: ignore[attr-defined]
        self._buf = bytearray()
        self._parts: list[dict[str, object]] = []

    def _flush(self) -> None:
        n = len(self._parts) + 1
        etag = self._c.upload_part(Bucket=self._bucket, Key=self._key, UploadId=self._upload,  # type: ignore[attr-defined]
                                   PartNumber=n, Body=bytes(self._buf))["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": n})
        self._buf.clear()

    def write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= self.PART:
            self._flush()

    def commit(self) -> None:
        if self._buf or not self._parts:
            self._flush()
        self._c.complete_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload,  # type: ignore[attr-defined]
                                          MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        self._c.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload)  # type: ignore[attr-defined]


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3  # optional dependency: only S3 deployments need it

        self._c = boto3.client("s3", endpoint_url=endpoint_url)
        self.bucket, self.prefix = bucket, prefix

    def writer(self, key: str) -> BlobWriter:
        return _S3Writer(self._c, self.bucket, self.prefix + key)

    def read(self, key: str) -> Iterator[bytes]:
        body = self._c.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        yield from body.iter_chunks(CHUNK)

    def delete(self, key: str) -> None:
        self._c.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def from_settings(settings: Settings | None = None) -> BlobStore:
    s = settings or get_settings()
    if s.blob_store == "s3":
        return S3BlobStore(s.s3_bucket, s.s3_prefix, s.s3_endpoint_url)
    return LocalBlobStore(s.blob_dir)


async def aiter_blob(store: BlobStore, key: str) -> AsyncIterator[bytes]:
    """Stream a blob to an async consumer without blocking the event loop on disk or network reads."""
    import anyio

    it = store.read(key)
    sentinel = object()
    while True:
        chunk = await anyio.to_thread.run_sync(next, it, sentinel)
        if chunk is sentinel:
            return
        yield chunk  # type: ignore[misc]
