"""The Chat Completions request a backend gets for a model turn: OpenAI's semantics, phrased so that the kind of
server behind the route honours them (see shared/backends.py for the quirks, and the README's "The model").

Decisions only, no I/O: `prepare` is a pure function of the request and the route."""

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from shared.backends import Route
from worker.model_types import ModelError, ModelRequest

IMAGE_NOTE = "[an image was attached here; this model cannot see images]"


@dataclass
class ForcedCall:
    """A forced call obtained as schema-constrained JSON: the answer's text is the call (see AnswerReader)."""

    names: list[str]  # the function(s) it may be
    # True: the text is {"name", "arguments"} (one of several tools); False: it is the arguments of names[0].
    wrapped: bool


@dataclass
class Prepared:
    kwargs: dict[str, Any]  # for `chat.completions.create`, "stream" included
    forced: ForcedCall | None = None
    tool_names: list[str] = field(default_factory=list)
    # Asked next if the answer is empty (no words, no calls): see Quirks.auto_answers_empty.
    if_empty: "Prepared | None" = None


def prepare(req: ModelRequest, route: Route) -> Prepared:
    quirks = route.quirks
    tools, choice = req.tools, req.tool_choice
    if tools and not route.tools:
        if _forced(choice):
            raise ModelError("invalid_prompt", f"The run requires a tool call (tool_choice), but model "
                             f"{route.name!r} is configured without tools.", transient=False)
        tools, choice = [], None  # like a model that chooses not to call any
    if tools and isinstance(choice, dict):
        named = _named(tools, choice)
        if quirks.named_choice == "json_schema":
            return _as_json(req, route, named, wrapped=False)
    if tools and choice == "required" and quirks.required_choice == "json_schema":
        return _as_json(req, route, tools, wrapped=True)
    kw = _common(req, route)
    if tools:
        kw["tools"] = tools
        kw["tool_choice"] = choice if choice is not None else "auto"
        if req.parallel_tool_calls is False:
            kw["parallel_tool_calls"] = False
    if req.response_format is not None:
        kw["response_format"] = req.response_format
    if tools and kw["tool_choice"] == "auto" and quirks.auto_answers_empty:
        kw["stream"] = False
        words = {k: v for k, v in kw.items() if k not in ("tools", "tool_choice", "parallel_tool_calls")}
        words.update(stream=True, stream_options={"include_usage": True})
        return Prepared(kw, tool_names=[_name(t) for t in tools], if_empty=Prepared(words))
    # Servers that ignore it (llama-cpp-python) send no usage: the client then estimates it.
    kw.update(stream=True, stream_options={"include_usage": True})
    return Prepared(kw, tool_names=[_name(t) for t in tools])


def _common(req: ModelRequest, route: Route) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": route.upstream, "messages": _messages(req.messages, route)}
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is not None:
            kw[name] = value
    if req.max_tokens is not None:
        kw[route.quirks.max_tokens_field] = req.max_tokens
    return kw


def _forced(choice: Any) -> bool:
    return choice == "required" or isinstance(choice, dict)


def _name(tool: dict[str, Any]) -> str:
    return str((tool.get("function") or {}).get("name", ""))


def _named(tools: list[dict[str, Any]], choice: dict[str, Any]) -> list[dict[str, Any]]:
    name = (choice.get("function") or {}).get("name")
    named = [t for t in tools if _name(t) == name]
    if not named:
        raise ModelError("invalid_prompt", f"tool_choice names the function {name!r}, which the run does not "
                         "offer.", transient=False)
    return named


def _parameters(tool: dict[str, Any]) -> dict[str, Any]:
    return (tool.get("function") or {}).get("parameters") or {"type": "object", "properties": {}}


def _as_json(req: ModelRequest, route: Route, tools: list[dict[str, Any]], *, wrapped: bool) -> Prepared:
    """A forced call as a schema-constrained answer: the model is told which function it calls (the tools are not
    sent, so no tool grammar competes with the schema), and can write nothing but its arguments. That is OpenAI's
    meaning of a forced call: the named tool (or, for "required", one of the tools) is called, at once."""
    described = ", ".join(f"`{_name(t)}`" + (f" ({d})" if (d := t["function"].get("description")) else "")
                          for t in tools)
    if wrapped:
        schema: dict[str, Any] = {"anyOf": [{
            "type": "object", "properties": {"name": {"const": _name(t)}, "arguments": _parameters(t)},
            "required": ["name", "arguments"]} for t in tools]}
        note = (f"Call one of these functions now: {described}. Reply only with a JSON object: "
                '{"name": the function\'s name, "arguments": its arguments}.')
    else:
        schema = _parameters(tools[0])
        note = f"Call the function {described} now: reply only with its arguments, as a JSON object."
    kw = _common(req, route)
    kw["messages"] = _with_note(kw["messages"], note)
    kw["response_format"] = {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": schema}}
    kw["stream"], kw["stream_options"] = True, {"include_usage": True}
    return Prepared(kw, ForcedCall([_name(t) for t in tools], wrapped), tool_names=[_name(t) for t in tools])


def _with_note(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """The note joins the leading system message (some chat templates refuse a system message elsewhere)."""
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


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


def parse_forced(text: str, forced: ForcedCall) -> tuple[str, str] | None:
    """(name, arguments) of the call a forced answer's text is, or None if it is not one (a server that ignored
    `response_format` and answered in words)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if not forced.wrapped:
        return forced.names[0], text
    if data.get("name") not in forced.names:
        return None
    arguments = data.get("arguments", {})
    return str(data["name"]), arguments if isinstance(arguments, str) else json.dumps(arguments)
