"""A minimal HTTP/1.1 client on asyncio streams (keep-alive, chunked responses) for the benchmark: it spends
as little CPU as a client can, so the figures show the server's cost rather than the SDK's."""

import asyncio
import json
from typing import Any


class Conn:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _ensure(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, str]]:
        reader, writer = await self._ensure()
        raw = json.dumps(body).encode() if body is not None else b""
        kind = "Content-Type: application/json\r\n" if body is not None else ""
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
                     f"{kind}Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    async def _body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        out = bytearray()
        while True:  # chunked
            size = int((await self.reader.readline()).strip(), 16)
            if size == 0:
                await self.reader.readline()
                return bytes(out)
            out += await self.reader.readexactly(size)
            await self.reader.readline()

    async def get_json(self, path: str) -> dict[str, Any]:
        status, headers = await self._send("GET", path, None)
        data = json.loads(await self._body(headers))
        if status != 200:
            raise RuntimeError(f"{status}: {data}")
        return data  # type: ignore[no-any-return]

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, headers = await self._send("POST", path, body)
        data = json.loads(await self._body(headers))
        if status != 200:
            raise RuntimeError(f"{status}: {data}")
        return data  # type: ignore[no-any-return]

    async def post_stream_until(self, path: str, body: dict[str, Any], until: bytes) -> bool:
        """POST, then read the SSE body to its end; True if an event line equal to `until` was seen."""
        status, headers = await self._send("POST", path, body)
        assert self.reader is not None
        if status != 200:
            raise RuntimeError(f"{status}: {await self._body(headers)!r}")
        seen = False
        buf = b""
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            if size == 0:
                await self.reader.readline()
                return seen
            buf += await self.reader.readexactly(size)
            await self.reader.readline()
            if not seen and until in buf:
                seen = True
            buf = buf[-len(until):]
