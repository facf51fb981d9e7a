"""An upstream failure as the run's `last_error`: OpenAI's code (`rate_limit_exceeded`, `server_error`,
`invalid_prompt`), whether retrying can help, and a message a user can read in one line.

Servers word their errors differently: OpenAI `{"error": {"message", "type", "param", "code"}}`; llama-server the
same with `code` the HTTP status; FastAPI-based servers `{"detail": [...]}`; llama-cpp-python answers a request it
cannot parse with a 500 whose message is pydantic's multi-line validation report. A 500 that is really a
refusal of the request (a validation error, an image sent to a text-only model) is `invalid_prompt`, and is not
retried: sending it again cannot succeed."""

import ast
import http.client
import re
from typing import Any

from worker.model_types import ModelError

MAX_MESSAGE = 300
_FASTAPI = re.compile(r"\s*\d+ validation errors?:\s*\n")
_PYDANTIC = re.compile(r"(\d+) validation errors? for \S+\s*\n(\S[^\n]*)\n\s+([^\n]+)")
# What a 500 says when the request itself is the problem (pydantic's report, llama-server's image refusal,
# malformed JSON or tools, a prompt longer than the context).
_REFUSALS = ("validation error", "not supported", "does not support", "invalid json", "exceed")


def classify(exc: Exception) -> ModelError:
    """A failure met calling the model. worker/upstream_http.py raises ModelError itself up to the answer's
    first bytes; what breaks after comes as the socket's own errors."""
    if isinstance(exc, ModelError):
        return exc
    # A connection broken or gone silent mid-answer is the server's or the network's trouble, worth another try.
    if isinstance(exc, TimeoutError):
        return ModelError("server_error", "The model stopped answering mid-stream.", transient=True)
    if isinstance(exc, OSError | http.client.HTTPException):
        return ModelError("server_error", f"The model's answer broke off ({exc.__class__.__name__}).",
                          transient=True)
    return ModelError("server_error", f"Unexpected error calling the model: {exc.__class__.__name__}",
                      transient=False)


def http_error(status: int, body: Any) -> ModelError:
    """A non-2xx answer; `body` as parsed JSON, or its text."""
    if status == 429:
        return ModelError("rate_limit_exceeded", f"The model is rate limited: {detail(body)}", transient=True)
    return status_error(status, body)


def status_error(status: int, body: Any) -> ModelError:
    said = detail(body)
    if status in (400, 413, 422) or (status >= 500 and _is_refusal(said)):
        return ModelError("invalid_prompt", f"The model server refused the request: {said}", transient=False)
    if status >= 500 or status in (408, 409):
        return ModelError("server_error", f"The model failed ({status}): {said}", transient=True)
    if status == 404:
        return ModelError("server_error", f"The model server does not know this model (404): {said}",
                          transient=False)
    return ModelError("server_error", f"The model server refused the request ({status}): {said}", transient=False)


def stream_error(error: Any) -> ModelError:
    """An error a server sent as a chunk of a stream that had begun."""
    said = detail(error)
    if _is_refusal(said):
        return ModelError("invalid_prompt", f"The model server refused the request: {said}", transient=False)
    return ModelError("server_error", f"The model failed mid-answer: {said}", transient=True)


def _is_refusal(said: str) -> bool:
    low = said.lower()
    return any(word in low for word in _REFUSALS)


def detail(body: Any) -> str:
    """What the server said, in one short line."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict | str):
        body = body["error"]
    text = ""
    if isinstance(body, dict):
        if body.get("type") == "exceed_context_size_error" or "n_ctx" in body:
            return (f"the prompt ({body.get('n_prompt_tokens', '?')} tokens) does not fit the model's context "
                    f"({body.get('n_ctx', '?')} tokens); lower this model's context window (context_window in "
                    "LLM_BACKENDS, or LLM_CONTEXT_WINDOWS)")
        if isinstance(body.get("detail"), list) and body["detail"]:
            return _fastapi(body["detail"])
        text = str(body.get("message") or body.get("detail") or body)
    elif body is not None:
        text = str(body)
    return _short(_pydantic(text))


def _pydantic(text: str) -> str:
    """A validation report in one line, "validation error: loc: msg (and N more)". Two forms are read: FastAPI's
    (llama-cpp-python's server: "7 validation errors:\n  {'type': …, 'loc': (…), 'msg': …}\n  …") and
    pydantic's own ("2 validation errors for X\nloc\n  msg [type=…]\n    For further …")."""
    if _FASTAPI.match(text):
        errors = []
        for line in text.splitlines()[1:]:
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    errors.append(ast.literal_eval(line))
                except (ValueError, SyntaxError):
                    continue
        if errors:
            return _fastapi(errors)
    m = _PYDANTIC.search(text)
    if not m:
        return text
    count, where, what = int(m.group(1)), m.group(2).strip(), m.group(3).split(" [type=")[0].strip()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"validation error: {where}: {what}{more}"


def _fastapi(errors: list[Any]) -> str:
    errors = [e if isinstance(e, dict) else {"msg": str(e)} for e in errors]
    # A message that matches none of a union's members yields an error per member; the telling one is not a role
    # mismatch ("Input should be 'system'") nor a field of another member that is missing.
    first = next((e for e in errors if e.get("type") not in ("literal_error", "missing")), errors[0])
    where = ".".join(str(p) for p in first.get("loc") or () if p != "body" and not _is_model_name(p))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _short(f"validation error: {where + ': ' if where else ''}{first.get('msg', '')}{more}")


def _is_model_name(part: Any) -> bool:
    """A union member in a location ("ChatCompletionRequestAssistantMessage"), not a field or an index."""
    return isinstance(part, str) and part[:1].isupper()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"
