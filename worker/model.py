"""The model boundary: one Chat Completions call to the backend the run's model name routes to
(shared/backends.py), over the lean HTTP client of worker/upstream_http.py, with the upstream's errors sorted into
the run's `last_error` codes. Transient failures (429, 5xx, timeouts, dropped streams) are retried with backoff
here, before the run is failed.

What differs between servers is handled by pure helpers: the request each kind of server needs
(worker/upstream_request.py), reading answers whatever their chunking and estimating missing usage
(worker/upstream_stream.py), and error shaping (worker/upstream_errors.py)."""

import json
import logging
import time
from collections.abc import Callable, Iterator

from shared import backends, metrics
from shared.config import get_settings
from worker import upstream_errors, upstream_http, upstream_request, upstream_stream
from worker.model_types import ModelError, ModelRequest, ModelResult, Stopped, ToolCall

__all__ = ["ModelError", "ModelRequest", "ModelResult", "Stopped", "ToolCall", "complete", "context_window", "route"]

log = logging.getLogger("worker.model")


def route(name: str) -> backends.Route:
    try:
        return backends.route(name)
    except backends.BackendsError as exc:
        raise ModelError("server_error", f"The model backends are misconfigured: {exc}", transient=False) from exc


def context_window(name: str) -> int:
    """Tokens the prompt and the completion share, for runs of model `name`."""
    return route(name).context_window


class _Body:
    """A streamed answer's `data:` payloads, read at a pace once the answer flows.

    A server sends each token as it is made. Read as they came, every token cost a wake-up of the greenlet and a
    socket read — much of a runs worker's CPU at real-model speed. Clients see text at most every
    STREAM_FLUSH_SECONDS anyway (worker/live.py), so once text has flowed for that long, a read that had to wait
    for the server is followed by a pause of that long, and the next read takes everything sent meanwhile at once.
    The first token is never held back, nor an answer that comes in one burst (a fast model's, or a cached one)."""

    WAITED = 0.001  # a read that took longer than this waited for the server: nothing more was buffered

    def __init__(self, read: Callable[[], bytes], pace: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._read, self._pace, self._clock, self._sleep = read, pace, clock, sleep
        self.flowing = False  # set by the reader once something was relayed
        self._since: float | None = None  # when it was first seen flowing

    def data(self) -> Iterator[str]:
        read = self._read
        buffered = b""
        ended = False
        while not ended:
            began = self._clock()
            raw = read()  # what has come, or (waiting) the next piece; b"" at the end
            waited = self._clock() - began > self.WAITED
            if not raw:  # the body's end; a last line may lack its newline
                ended, lines = True, [buffered]
            else:
                *lines, buffered = (buffered + raw).split(b"\n")
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip().decode()
                if payload == "[DONE]":
                    # Read the body to its end (nothing but its terminator is left), so that the connection goes
                    # back to the pool: a body left unread makes the client close the connection, and the next
                    # call pays a new TCP (and TLS) handshake.
                    while read():
                        pass
                    return
                yield payload
            if self.flowing and not ended:
                now = self._clock()
                if self._since is None:
                    self._since = now
                if waited and self._pace > 0 and now - self._since >= self._pace:
                    self._sleep(self._pace)


def _once(r: backends.Route, prepared: upstream_request.Prepared, on_text: Callable[[str], None],
          on_tool_delta: Callable[[int, ToolCall, str], None], should_stop: Callable[[], bool]) -> ModelResult:
    kw = prepared.kwargs
    reader = upstream_stream.AnswerReader(prepared.tool_names, prepared.forced)

    def relay(deltas: list[upstream_stream.Delta]) -> None:
        for d in deltas:
            if isinstance(d, upstream_stream.Text):
                on_text(d.piece)
            else:
                on_tool_delta(d.index, d.call, d.piece)

    with upstream_http.post(r.base_url, r.api_key, "/chat/completions", kw, get_settings().llm_timeout_seconds,
                            label=kw.get("model", "")) as response:
        if not kw["stream"]:
            body = json.loads(response.read())
            if should_stop():  # cancelled while the server was answering: nothing of it is kept
                raise Stopped()
            relay(reader.completion(body))
        else:
            stream = _Body(upstream_http.body_reader(response), get_settings().stream_flush_seconds)
            for payload in stream.data():
                if should_stop():
                    raise Stopped()
                # Plain json: no model classes built per chunk (the SDK's cost a third of a worker's CPU).
                chunk = json.loads(payload)
                if chunk.get("error"):
                    raise upstream_errors.stream_error(chunk["error"])
                deltas = reader.chunk(chunk)
                stream.flowing |= bool(deltas)
                relay(deltas)
    return reader.finish(kw["messages"], kw.get("tools", []))


def complete(req: ModelRequest, *, on_text: Callable[[str], None],
             on_tool_delta: Callable[[int, ToolCall, str], None], should_stop: Callable[[], bool],
             on_retry: Callable[[], None] | None = None) -> ModelResult:
    """One model turn. Raises ModelError (after retries) or Stopped."""
    r = route(req.model)
    prepared = upstream_request.prepare(req, r)
    retries = get_settings().llm_max_retries
    attempt = 0
    while True:
        began = time.perf_counter()
        try:
            result = _once(r, prepared, on_text, on_tool_delta, should_stop)
            if prepared.if_empty is not None and not (result.text or result.tool_calls):
                first, result = result, _once(r, prepared.if_empty, on_text, on_tool_delta, should_stop)
                result.prompt_tokens += first.prompt_tokens
                result.completion_tokens += first.completion_tokens
                result.usage_estimated |= first.usage_estimated
        except Stopped:
            metrics.MODEL_DURATION.labels(r.upstream, "stopped").observe(time.perf_counter() - began)
            raise
        except Exception as exc:
            err = upstream_errors.classify(exc)
            metrics.MODEL_DURATION.labels(r.upstream, err.code).observe(time.perf_counter() - began)
            if not err.transient or attempt >= retries:
                raise err from exc
            log.warning("model %s (%s): %s; retrying", r.upstream, r.base_url, err.message)
        else:
            metrics.MODEL_DURATION.labels(r.upstream, "ok").observe(time.perf_counter() - began)
            metrics.MODEL_TOKENS.labels(r.upstream, "prompt").inc(result.prompt_tokens)
            metrics.MODEL_TOKENS.labels(r.upstream, "completion").inc(result.completion_tokens)
            if result.usage_estimated:
                metrics.MODEL_USAGE_ESTIMATED.labels(r.upstream).inc()
                log.info("model %s sent no usage: estimated %d prompt and %d completion tokens", r.upstream,
                         result.prompt_tokens, result.completion_tokens)
            return result
        attempt += 1
        if on_retry is not None:
            on_retry()
        time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
