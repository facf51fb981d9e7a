"""Uploads stream to the blob store: memory stays flat however big the file, and the 512 MB limit cuts an
upload off as it crosses the line (nothing of it is kept)."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.stack import Stack, peak_rss

MB = 1024 * 1024
BOUNDARY = "testboundary7MA4YWxkTrZu0gW"


def multipart(size: int, digest: "hashlib._Hash | None" = None) -> Iterator[bytes]:
    """A multipart body with a `size`-byte file, generated on the fly (chunked transfer, no Content-Length)."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    sent = 0
    while sent < size:
        piece = chunk[: min(MB, size - sent)]
        if digest is not None:
            digest.update(piece)
        sent += len(piece)
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _api_pid(stack: Stack) -> int:
    return stack.pid("api")


def _peak_rss_mb(pid: int) -> float:
    return peak_rss(pid) / (1 << 20)


def _upload(http: httpx.Client, size: int, digest: "hashlib._Hash | None" = None) -> httpx.Response:
    return http.post("/files", content=multipart(size, digest), timeout=300,
                     headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


def test_large_upload_does_not_grow_memory(stack: Stack, http: httpx.Client) -> None:
    pid = _api_pid(stack)
    _upload(http, 4 * MB).raise_for_status()  # warm-up: imports, pools
    before = _peak_rss_mb(pid)
    sent = hashlib.sha256()
    r = _upload(http, 300 * MB, sent)
    r.raise_for_status()
    assert r.json()["bytes"] == 300 * MB
    grown = _peak_rss_mb(pid) - before
    assert grown < 40, f"API peak memory grew by {grown:.0f} MB for a 300 MB upload"

    got = hashlib.sha256()
    with http.stream("GET", f"/files/{r.json()['id']}/content") as resp:
        for part in resp.iter_bytes():
            got.update(part)
    assert got.hexdigest() == sent.hexdigest()
    assert _peak_rss_mb(pid) - before < 40  # downloads stream too


def test_oversize_upload_is_refused_and_nothing_kept(stack: Stack, http: httpx.Client) -> None:
    blobs = Path(stack.env["BLOB_DIR"])
    before = {p for p in blobs.rglob("*") if p.is_file()}
    files_before = http.get("/files").json()["data"]
    try:
        r = _upload(http, 512 * MB + 1)
        status, body = r.status_code, r.json()
    except httpx.HTTPError:  # the server may close the connection once it has answered
        status, body = 413, None
    assert status == 413
    if body is not None:
        assert body["error"]["code"] == "file_too_large" and body["error"]["param"] == "file"
    assert http.get("/files").json()["data"] == files_before
    assert {p for p in blobs.rglob("*") if p.is_file()} == before
    assert http.get("/files").status_code == 200
