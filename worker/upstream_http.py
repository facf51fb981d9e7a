"""The model server's HTTP: one POST per model turn, its answer read as it comes, on kept-alive connections.

Why not the `openai` SDK (httpx) here: a streamed answer comes as one HTTP chunk per token, and httpx hands each
chunk up through some fifteen layers of generators (h11's parser, httpcore's events, httpx's byte streams) —
measured, more than half of a runs worker's CPU for a model call, more than all else a step does. The standard
library's http.client reads a chunk with a buffered readline. What the SDK gave is kept: the base URL, bearer
auth, one timeout for connecting and for each read, the environment's proxies, and the upstream's errors
sorted as the SDK's were (worker/upstream_errors.py). Under gevent the sockets are cooperative.

A server that gives a kept-alive connection up without saying so (llama-server drops the next request sent on it)
costs no failed call: a request that got no answer on a reused connection is sent again at once, once, on a new
connection. (Like the SDK's retry before it, that may repeat a request a server did take before dropping the
connection: a model call, which is safe to repeat.)"""

import base64
import http.client
import json
import os
import re
import select
import ssl
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from gevent.monkey import get_original

from shared import metrics
from worker import upstream_errors
from worker.model_types import ModelError

KEEPALIVE_SECONDS = 5.0  # a connection idle longer may have been closed by the server: not reused (as httpx)
MAX_IDLE = 256  # idle connections kept per server
MAX_ERROR_BODY = 1 << 20
READ_BYTES = 1 << 16
MAX_LINE = 1 << 16  # a chunk-size or trailer line longer than this is not HTTP
_HEX = re.compile(rb"[0-9A-Fa-f]+")
# The unpatched poll: a zero-timeout look at an idle socket must neither switch greenlets (gevent's would) nor be
# limited to descriptors below 1024 (select's is, and a gevent worker holds more).
_poll = get_original("select", "poll")

Origin = tuple[str, str, int]


class _Pool:
    """Idle connections per server, newest reused first."""

    def __init__(self) -> None:
        self._idle: dict[Origin, deque[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._idle.clear)  # a forked child must not share its parent's sockets

    def take(self, origin: Origin, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to `origin`, and whether it was used before."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                expired = []
                while idle and time.monotonic() - idle[0][1] >= KEEPALIVE_SECONDS:  # the oldest, unused a while
                    expired.append(idle.popleft()[0])
                conn, since = idle.pop() if idle else (None, 0.0)
            for old in expired:
                old.close()
            if conn is None:
                return _connection(origin, timeout), False
            if time.monotonic() - since < KEEPALIVE_SECONDS and not _closed_by_peer(conn):
                assert conn.sock is not None  # checked by _closed_by_peer
                conn.sock.settimeout(timeout)
                return conn, True
            conn.close()

    def give(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        if conn.sock is None:  # closed (the server said Connection: close)
            return
        with self._lock:
            idle = self._idle.setdefault(origin, deque())
            if len(idle) < MAX_IDLE:
                idle.append((conn, time.monotonic()))
                return
        conn.close()


POOL = _Pool()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed by the server (or is out of step): not reusable."""
    if conn.sock is None:
        return True
    try:
        watch = _poll()
        watch.register(conn.sock.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(watch.poll(0))
    except (OSError, ValueError):
        return True


def _connection(origin: Origin, timeout: float) -> http.client.HTTPConnection:
    scheme, host, port = origin
    proxy = _proxy(scheme, host)
    if proxy is None:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls())
        return http.client.HTTPConnection(host, port, timeout=timeout)
    # The proxy itself is spoken to in plain HTTP (the usual http:// proxy URL); HTTPS goes through its tunnel.
    via = (proxy.hostname or "", proxy.port or 80)
    if scheme == "https":
        conn = http.client.HTTPSConnection(*via, timeout=timeout, context=_tls())
        conn.set_tunnel(host, port, headers=_proxy_auth(proxy))
        return conn
    return http.client.HTTPConnection(*via, timeout=timeout)


def _proxy_auth(proxy: SplitResult) -> dict[str, str]:
    """Credentials in the proxy's URL (http://user:password@proxy:3128), as a Proxy-Authorization header."""
    if proxy.username is None:
        return {}
    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
    return {"Proxy-Authorization": f"Basic {base64.b64encode(pair).decode()}"}


@lru_cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # the system's CAs; SSL_CERT_FILE / SSL_CERT_DIR are honoured


@lru_cache
def _proxy(scheme: str, host: str) -> SplitResult | None:
    """The proxy the environment names for `scheme` (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), as httpx used them.
    Read once per server: walking the environment on every call cost more than sending the request."""
    proxies = urllib.request.getproxies()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass(host):
        return None
    return urlsplit(url if "://" in url else f"http://{url}")


@contextmanager
def post(base_url: str, api_key: str, path: str, body: dict[str, Any], timeout: float,
         label: str = "") -> Iterator[http.client.HTTPResponse]:
    """POST `body` as JSON to `base_url` + `path`; yields the 2xx response, its body unread. Fails with the
    run's ModelError before an answer (unreachable, timed out, an error status); once the body is read, the
    socket's own errors (TimeoutError, OSError, http.client.IncompleteRead) come through as they are.
    The connection is kept for the next call if the body was read to its end."""
    url = urlsplit(base_url.rstrip("/") + path)
    scheme = url.scheme or "http"
    host = url.hostname or ""
    origin = (scheme, host, url.port or (443 if scheme == "https" else 80))
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "Authorization": f"Bearer {api_key}", "User-Agent": "assistants-worker"}
    # Through a plain-HTTP proxy the request line names the whole URL, and the proxy's credentials ride along.
    proxy = _proxy(scheme, host) if scheme == "http" else None
    target = url.path + (f"?{url.query}" if url.query else "")
    if proxy is not None:
        target = url.geturl()
        headers.update(_proxy_auth(proxy))
    for attempt in (1, 2):
        conn, reused = POOL.take(origin, timeout) if attempt == 1 else (_connection(origin, timeout), False)
        try:
            conn.request("POST", target, payload, headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            dropped = isinstance(exc, ConnectionError | http.client.BadStatusLine)
            if dropped and reused and attempt == 1:  # the server had given this connection up: send it again
                metrics.MODEL_RESENDS.labels(label).inc()
                continue
            said = "did not answer in time" if isinstance(exc, TimeoutError) else "could not be reached"
            raise ModelError("server_error", f"The model {said}.", transient=True) from exc
        break
    try:
        if not 200 <= response.status < 300:
            raise upstream_errors.http_error(response.status, _error_body(response))
        yield response
    finally:
        if response.isclosed():
            POOL.give(origin, conn)
        else:  # a body left unread (or out of step): the connection cannot carry another request
            response.close()  # (it holds the socket itself when the server said Connection: close)
            conn.close()


def _error_body(response: http.client.HTTPResponse) -> Any:
    try:
        raw = response.read(MAX_ERROR_BODY)
    except (OSError, http.client.HTTPException):
        return ""
    text = raw.decode("utf-8", "replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def body_reader(response: http.client.HTTPResponse) -> Callable[[], bytes]:
    """`read()`: the body's next bytes — all that has come, waiting for some if nothing has — and b"" at its end.

    A chunked body (every streamed answer of OpenAI, vLLM, Ollama) is de-chunked here, in bulk: http.client hands
    out one chunk per call, i.e. one token, and its per-chunk calls cost more than the token's JSON decoding."""
    if not response.chunked:
        return _sized_reader(response)
    chunks = Dechunker()
    fp = response.fp

    def read() -> bytes:
        while not chunks.done:
            raw = fp.read1(READ_BYTES)
            if not raw:
                raise http.client.IncompleteRead(b"")  # the connection closed mid-body
            data = chunks.feed(raw)
            if data:
                return data
        if not chunks.leftover:
            response.close()  # read to its end: the connection can carry the next request
        return b""  # (anything after the end means it is out of step: left open, post() closes it)

    return read


def _sized_reader(response: http.client.HTTPResponse) -> Callable[[], bytes]:
    """A body of known length (or one that lasts until the server closes the connection). http.client's read1
    neither closes a response read to its length (so the connection would not be reused) nor tells a body cut
    short from a finished one: both are done here."""

    def read() -> bytes:
        if response.length == 0:
            response.close()
            return b""
        raw = response.read1(READ_BYTES)
        if not raw and response.length:
            raise http.client.IncompleteRead(b"", response.length)
        return raw

    return read


class Dechunker:
    """HTTP/1.1's chunked transfer coding taken off bytes as they come, however they are split (pure)."""

    SIZE, DATA, DATA_END, TRAILER = range(4)

    def __init__(self) -> None:
        self.done = False
        self._state = self.SIZE
        self._left = 0  # bytes of the current chunk's data still to come
        self._buf = b""

    def feed(self, raw: bytes) -> bytes:
        """The data in `raw` (and in what came before it unfinished), without the framing."""
        buf = self._buf + raw if self._buf else raw
        pos, out = 0, []
        while not self.done:
            if self._state == self.DATA:
                end = min(len(buf), pos + self._left)
                out.append(buf[pos:end])
                self._left -= end - pos
                pos = end
                if self._left:
                    break
                self._state = self.DATA_END
            elif self._state == self.DATA_END:
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise http.client.HTTPException("chunk data not followed by CRLF")
                pos += 2
                self._state = self.SIZE
            else:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if len(buf) - pos > MAX_LINE:
                        raise http.client.HTTPException("chunk-size line too long")
                    break
                line, pos = buf[pos:nl].rstrip(b"\r"), nl + 1
                if self._state == self.TRAILER:
                    self.done = not line  # trailer fields end with an empty line
                    continue
                digits = line.split(b";", 1)[0].strip()  # extensions (";name=value") are ignored
                if not _HEX.fullmatch(digits):  # (int() would also take "-6", "+3", "0x3", "1_0")
                    raise http.client.HTTPException(f"bad chunk-size line {line[:40]!r}")
                size = int(digits, 16)
                self._state, self._left = (self.DATA, size) if size else (self.TRAILER, 0)
        self._buf = buf[pos:]
        return b"".join(out)

    @property
    def leftover(self) -> bool:
        """Bytes came after the body's end."""
        return bool(self._buf)
