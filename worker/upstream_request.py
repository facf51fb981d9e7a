"""The Chat Completions request a backend gets for a model turn: OpenAI's semantics, phrased so that the kind of
server behind the route honours them (see shared/backends.py for the quirks, and the README's "The model").

Decisions only, no I/O: `prepare` is a pure function of the request and the route."""

import copy
from typing import Any

from shared.backends import Route
from worker.model_types import ModelError, ModelRequest

IMAGE_NOTE = "[an image was attached here; this model cannot see images]"


def prepare(req: ModelRequest, route: Route) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create` (with "stream" saying whether to stream)."""
    quirks = route.quirks
    tools, choice = req.tools, req.tool_choice
    if tools and not route.tools:
        if _forced(choice):
            raise ModelError("invalid_prompt", f"The run requires a tool call (tool_choice), but model "
                             f"{route.name!r} is configured without tools.", transient=False)
        tools, choice = [], None  # like a model that chooses not to call any
    if tools and isinstance(choice, dict) and not quirks.named_tool_choice:
        tools, choice = _only_named(tools, choice)
    kw: dict[str, Any] = {"model": route.upstream, "messages": _messages(req.messages, route)}
    if tools:
        kw["tools"] = tools
        kw["tool_choice"] = choice if choice is not None else "auto"
        if req.parallel_tool_calls is False:
            kw["parallel_tool_calls"] = False
    for name in ("temperature", "top_p", "response_format"):
        value = getattr(req, name)
        if value is not None:
            kw[name] = value
    if req.max_tokens is not None:
        kw[quirks.max_tokens_field] = req.max_tokens
    kw["stream"] = quirks.streams_with_tools or not tools or kw["tool_choice"] != "auto"
    if kw["stream"]:
        # Servers that ignore it (llama-cpp-python) send no usage: the client then estimates it.
        kw["stream_options"] = {"include_usage": True}
    return kw


def _forced(choice: Any) -> bool:
    return choice == "required" or isinstance(choice, dict)


def _only_named(tools: list[dict[str, Any]], choice: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """A named tool_choice for a server that ignores it: offering only that function and requiring a call leaves
    the model one thing to do, which is what OpenAI's named choice means ("forces the model to call that
    tool")."""
    name = (choice.get("function") or {}).get("name")
    named = [t for t in tools if (t.get("function") or {}).get("name") == name]
    if not named:
        raise ModelError("invalid_prompt", f"tool_choice names the function {name!r}, which the run does not "
                         "offer.", transient=False)
    return named, "required"


def _messages(messages: list[dict[str, Any]], route: Route) -> list[dict[str, Any]]:
    if route.vision or not any(isinstance(m.get("content"), list) for m in messages):
        return messages
    # A text-only model: llama-server answers image parts with a 500, others with a 400 or the list's repr.
    # The model is told an image was there, and the rest of the conversation goes through.
    out = []
    for m in messages:
        if isinstance(m.get("content"), list):
            m = copy.copy(m)
            m["content"] = "\n".join(p.get("text", "") if p.get("type") == "text" else IMAGE_NOTE
                                     for p in m["content"] if p.get("type") in ("text", "image_url", "image_file"))
        out.append(m)
    return out
