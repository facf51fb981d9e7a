"""The worker's HTTP to the model server (worker/upstream_http.py), against a real server on a socket: answers
share one kept-alive connection; LLM_TIMEOUT_SECONDS bounds a wait for the answer and each silence within it,
not the answer's length; error statuses read as the SDK's did; the environment's proxy is used."""

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared import backends
from shared.config import get_settings
from tests.model_server import ScriptedModel
from worker import model, upstream_http


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    scripted = ScriptedModel().start()
    monkeypatch.setenv("LLM_BASE_URL", scripted.base_url)
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")  # a failed call fails outright
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "0.5")
    for env in ("LLM_BACKENDS", "LLM_BACKENDS_FILE", "LLM_MODEL_MAP", "LLM_DEFAULT_MODEL"):
        monkeypatch.delenv(env, raising=False)
    get_settings.cache_clear()
    backends.routes.cache_clear()
    yield scripted
    scripted.stop()
    get_settings.cache_clear()
    backends.routes.cache_clear()


def ask(text: str) -> model.ModelResult:
    return model.complete(model.ModelRequest(model="m", messages=[{"role": "user", "content": text}]),
                          on_text=lambda _: None, on_tool_delta=lambda *_: None, should_stop=lambda: False)


def test_answers_share_one_kept_alive_connection(server: ScriptedModel) -> None:
    accepted = []
    take = server.server.get_request

    def counted() -> Any:
        accepted.append(1)
        return take()

    server.server.get_request = counted  # type: ignore[method-assign]
    for n in range(4):
        assert ask(f"hi {n}").text == f"You said: hi {n}"
    assert len(accepted) == 1


@pytest.mark.parametrize(("reply", "said"), [
    ({"text": "one two three four", "stall": [2, 1.5]}, "The model stopped answering mid-stream."),
    ({"text": "late", "delay": 1.5}, "The model did not answer in time."),
], ids=["silent mid-answer", "slow to answer"])
def test_a_model_silent_past_the_timeout_is_a_transient_failure(server: ScriptedModel, reply: dict[str, Any],
                                                                said: str) -> None:
    server.script("slow", reply)
    began = time.monotonic()
    with pytest.raises(model.ModelError) as failed:
        ask("slow")
    assert 0.5 <= time.monotonic() - began < 1.4
    assert failed.value.transient and failed.value.message == said


def test_an_answer_longer_than_the_timeout_is_not_cut(server: ScriptedModel) -> None:
    """The timeout bounds each silence, as a real model streams for longer than any one wait."""
    server.script("long", {"text": " ".join(f"w{i}" for i in range(8)), "chunk_delay": 0.2})
    began = time.monotonic()
    assert ask("long").text.startswith("w0 w1")
    assert time.monotonic() - began > 1.0


def test_error_statuses_read_as_the_sdk_read_them(server: ScriptedModel) -> None:
    server.script("busy", {"error": 429, "message": "Rate limit reached for requests"})
    with pytest.raises(model.ModelError) as failed:
        ask("busy")
    assert failed.value.code == "rate_limit_exceeded" and failed.value.transient
    assert failed.value.message == "The model is rate limited: Rate limit reached for requests"
    server.script("unknown", {"error": 404, "body": "no such model"})
    with pytest.raises(model.ModelError) as failed:
        ask("unknown")
    assert not failed.value.transient and failed.value.message.endswith("(404): no such model")
    assert ask("and then").text == "You said: and then"  # the connection carried on after both


def test_an_unreachable_model_is_a_transient_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(model.ModelError) as failed, upstream_http.post("http://127.0.0.1:9/v1", "k", "/x", {}, 1.0):
        pass
    assert failed.value.transient and failed.value.message == "The model could not be reached."


def test_the_environment_s_proxy_carries_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str, Any]] = []

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], self.headers["Proxy-Authorization"], body))
            raw = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setenv("HTTP_PROXY", f"http://me:s%40cret@127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream_http._proxy.cache_clear()
    try:
        with upstream_http.post("http://model.invalid/v1", "key", "/chat/completions", {"n": 1}, 2.0) as answer:
            assert json.loads(answer.read()) == {"ok": True}
        assert seen == [("http://model.invalid/v1/chat/completions", "Bearer key", "Basic bWU6c0BjcmV0", {"n": 1})]
    finally:
        proxy.shutdown()
        upstream_http._proxy.cache_clear()


def test_chunked_bodies_are_read_whole_however_they_are_split() -> None:
    """The de-chunking of streamed answers, fed every way a socket may cut them: one byte at a time, at random,
    all at once; with chunk extensions and trailer fields; bad framing is an error, not garbage."""
    import random

    pieces = [b'data: {"n": 1}\n\n', b"x" * 300, b"\r\n", b"data: [DONE]\n\n"]
    wire = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";ext=1" if i == 1 else b"", p) for i, p in enumerate(pieces))
    wire += b"0\r\nX-Trailer: yes\r\n\r\n"
    rng = random.Random(7)
    splits = [[wire[i:i + 1] for i in range(len(wire))], [wire]]
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(wire)), 6))
        splits.append([wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)])
    for split in splits:
        chunks = upstream_http.Dechunker()
        out = b"".join(chunks.feed(raw) for raw in split)
        assert out == b"".join(pieces) and chunks.done
    for bad in (b"zz\r\n", b"1\r\nA\r\n-6\r\n", b"+3\r\nabc\r\n", b"0x3\r\nabc\r\n", b"1_0\r\n"):
        with pytest.raises(http.client.HTTPException):
            upstream_http.Dechunker().feed(bad)  # (a negative size once sent it back over the same line forever)
    with pytest.raises(http.client.HTTPException):
        upstream_http.Dechunker().feed(b"3\r\nabcXY")


def test_a_body_of_known_length_cut_short_is_an_error_and_one_read_whole_keeps_its_connection() -> None:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for body, declared in ((b"data: whole\n\n", 13), (b"data: cut", 100)):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (declared, body))
            if declared != len(body):
                conn.close()
            else:
                conn.recv(65536)  # the client's next request, on the same connection: unanswered, then closed
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    base = f"http://127.0.0.1:{port}/v1"
    with upstream_http.post(base, "k", "/x", {}, 2.0) as answer:
        read = upstream_http.body_reader(answer)
        assert read() == b"data: whole\n\n" and read() == b""
        assert answer.isclosed()  # read to its length: the connection goes back to the pool
    # The pooled connection carries the next request; the server drops it, so it is sent again on a new one.
    with upstream_http.post(base, "k", "/x", {}, 2.0) as answer:
        read = upstream_http.body_reader(answer)
        assert read() == b"data: cut"
        with pytest.raises(http.client.IncompleteRead):
            read()
    listener.close()
