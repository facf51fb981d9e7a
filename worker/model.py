"""The model boundary: one streamed Chat Completions call through the `openai` SDK, with the upstream's errors
sorted into the run's `last_error` codes. Transient failures (429, 5xx, timeouts, dropped streams) are retried
with backoff here, before the run is failed."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import openai

from shared import metrics
from shared.config import get_settings


@dataclass
class ToolCall:
    id: str
    name: str = ""
    arguments: str = ""


@dataclass
class ModelRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = None
    max_tokens: int | None = None


@dataclass
class ModelResult:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ModelError(Exception):
    """A failure the run reports as `last_error` {code, message}."""

    def __init__(self, code: str, message: str, transient: bool) -> None:
        super().__init__(message)
        self.code, self.message, self.transient = code, message, transient


class Stopped(Exception):
    """The caller asked to stop (the run was cancelled); nothing of the call is kept."""


@lru_cache
def _client() -> openai.OpenAI:
    s = get_settings()
    # Our own retry loop owns backoff (it also covers streams that break midway), so the SDK does not retry.
    return openai.OpenAI(base_url=s.llm_base_url, api_key=s.llm_api_key, timeout=s.llm_timeout_seconds,
                         max_retries=0)


def upstream_model(name: str) -> str:
    s = get_settings()
    return s.llm_model_map.get(name) or s.llm_default_model or name


def context_window(upstream: str) -> int:
    s = get_settings()
    return s.llm_context_windows.get(upstream, s.llm_default_context_window)


def classify(exc: Exception) -> ModelError:
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.RateLimitError):
        return ModelError("rate_limit_exceeded", f"The model is rate limited: {exc.message}", transient=True)
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("server_error", "The model did not answer in time.", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return ModelError("server_error", "The model could not be reached.", transient=True)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            return ModelError("server_error", f"The model failed: {exc.message}", transient=True)
        if exc.status_code in (400, 413, 422):
            return ModelError("invalid_prompt", f"The model refused the prompt: {exc.message}", transient=False)
        return ModelError("server_error", f"The model endpoint refused the request ({exc.status_code}).",
                          transient=False)
    return ModelError("server_error", f"Unexpected error calling the model: {exc.__class__.__name__}",
                      transient=False)


def _kwargs(req: ModelRequest) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": req.model, "messages": req.messages, "stream": True,
                          "stream_options": {"include_usage": True}}
    if req.tools:
        kw["tools"] = req.tools
        if req.tool_choice is not None:
            kw["tool_choice"] = req.tool_choice
        if req.parallel_tool_calls is False:
            kw["parallel_tool_calls"] = False
    for name in ("temperature", "top_p", "response_format", "max_tokens"):
        value = getattr(req, name)
        if value is not None:
            kw[name] = value
    return kw


def _once(req: ModelRequest, on_text: Callable[[str], None], on_tool_delta: Callable[[int, ToolCall, str], None],
          should_stop: Callable[[], bool]) -> ModelResult:
    result = ModelResult()
    calls: dict[int, ToolCall] = {}
    # The SDK builds, sends and error-checks the request; chunks are read as raw SSE lines and decoded with
    # json, skipping the SDK's per-chunk model construction (a third of a worker's CPU per streamed call).
    with _client().chat.completions.with_streaming_response.create(**_kwargs(req)) as response:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            if should_stop():
                raise Stopped()
            chunk = json.loads(payload)
            if chunk.get("error"):
                raise ModelError("server_error", f"The model failed mid-answer: {chunk['error']}", transient=True)
            usage = chunk.get("usage")
            if usage:
                result.prompt_tokens = usage.get("prompt_tokens") or 0
                result.completion_tokens = usage.get("completion_tokens") or 0
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    result.text += delta["content"]
                    on_text(delta["content"])
                for tc in delta.get("tool_calls") or ():
                    index = tc.get("index", 0)
                    call = calls.get(index)
                    if call is None:
                        call = calls[index] = ToolCall(id=tc.get("id") or f"call_{index}")
                    fn = tc.get("function") or {}
                    if fn.get("name"):
                        call.name += fn["name"]
                    piece = fn.get("arguments") or ""
                    call.arguments += piece
                    on_tool_delta(index, call, piece)
                if choice.get("finish_reason"):
                    result.finish_reason = choice["finish_reason"]
    result.tool_calls = [calls[i] for i in sorted(calls)]
    return result


def complete(req: ModelRequest, *, on_text: Callable[[str], None],
             on_tool_delta: Callable[[int, ToolCall, str], None], should_stop: Callable[[], bool],
             on_retry: Callable[[], None] | None = None) -> ModelResult:
    """Stream one completion. Raises ModelError (after retries) or Stopped."""
    retries = get_settings().llm_max_retries
    attempt = 0
    while True:
        began = time.perf_counter()
        try:
            result = _once(req, on_text, on_tool_delta, should_stop)
        except Stopped:
            metrics.MODEL_DURATION.labels(req.model, "stopped").observe(time.perf_counter() - began)
            raise
        except Exception as exc:
            err = classify(exc)
            metrics.MODEL_DURATION.labels(req.model, err.code).observe(time.perf_counter() - began)
            if not err.transient or attempt >= retries:
                raise err from exc
        else:
            metrics.MODEL_DURATION.labels(req.model, "ok").observe(time.perf_counter() - began)
            metrics.MODEL_TOKENS.labels(req.model, "prompt").inc(result.prompt_tokens)
            metrics.MODEL_TOKENS.labels(req.model, "completion").inc(result.completion_tokens)
            return result
        attempt += 1
        if on_retry is not None:
            on_retry()
        time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
