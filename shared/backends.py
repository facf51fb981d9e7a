"""Where a run's model name goes: the upstream Chat Completions server that answers for it.

One place configures the routes: LLM_BACKENDS (JSON in the environment) or LLM_BACKENDS_FILE (the same JSON in a
file), a map from the model names assistants and runs use to their upstream:

    {"gpt-4o":   {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY",
                  "context_window": 128000},
     "llama3.1": {"base_url": "http://ollama:11434/v1", "server": "ollama", "model": "llama3.1:8b",
                  "context_window": 8192, "vision": false}}

A name it does not list goes to the default backend, configured as before by LLM_BASE_URL, LLM_API_KEY,
LLM_MODEL_MAP, LLM_DEFAULT_MODEL, LLM_CONTEXT_WINDOWS / LLM_DEFAULT_CONTEXT_WINDOW and LLM_SERVER.

`server` names the kind of server, which decides the quirks the model client works around (see `Quirks`); it
defaults to "openai" for api.openai.com and "generic" elsewhere. The configuration is checked strictly (unknown
keys, wrong types) so that a typo stops the API at start rather than misroutes runs.
"""

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.config import Settings, get_settings

ServerKind = Literal["openai", "vllm", "ollama", "llama.cpp", "llama-cpp-python", "generic"]


# How a forced call (tool_choice naming a tool, or "required") is obtained from a server:
#   "native"       the server forces it itself;
#   "json_schema"  no tools: the server's JSON-schema-constrained output (`response_format`) writes the call's
#                  arguments (or, for "required", {"name", "arguments"} of one of the tools), and the model client
#                  turns them into the call. llama-server ignores a named choice, and its "required" lets the model
#                  write text first: SmolLM2 then wrote about the tool to the token limit without calling it, every
#                  time, while a schema-constrained answer was a call every time. Servers that ignore
#                  `response_format` get a text reply instead, not a broken call.
ForcedCall = Literal["native", "json_schema"]


@dataclass(frozen=True)
class Quirks:
    """What a kind of server does differently from OpenAI's Chat Completions, as far as requests go."""

    named_choice: ForcedCall
    required_choice: ForcedCall
    # The field carrying the completion's token limit. OpenAI refuses `max_tokens` on its newer models and
    # refuses both fields together; llama-cpp-python ignores `max_completion_tokens`.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"]
    # With tools and tool_choice "auto", a model that chooses to answer in words gets an empty message
    # (llama-cpp-python's chatml-function-calling: after "message:" its grammar admits only a function name or
    # the end; streamed, the body is empty). Such a turn is asked without streaming, and when it chose words,
    # asked again without tools, for the words.
    auto_answers_empty: bool = False


QUIRKS: dict[str, Quirks] = {
    "openai": Quirks("native", "native", "max_completion_tokens"),
    "vllm": Quirks("native", "native", "max_tokens"),
    "ollama": Quirks("json_schema", "json_schema", "max_tokens"),  # ignores tool_choice
    "llama.cpp": Quirks("json_schema", "json_schema", "max_tokens"),
    # Forces a named tool by grammar, answers "required" with a 500.
    "llama-cpp-python": Quirks("native", "json_schema", "max_tokens", auto_answers_empty=True),
    # An unknown OpenAI-compatible server: what works on all of the above but OpenAI's newest models.
    "generic": Quirks("json_schema", "json_schema", "max_tokens"),
}


class RouteConfig(BaseModel):
    """One entry of LLM_BACKENDS."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, description="the upstream's /v1 URL; default: LLM_BASE_URL")
    api_key: str | None = None
    api_key_env: str | None = Field(default=None, description="an environment variable holding the key")
    model: str | None = Field(default=None, description="the upstream's name for the model; default: this name")
    context_window: int | None = Field(default=None, gt=0)
    server: ServerKind | None = None
    tools: bool = True
    vision: bool = True
    owned_by: str = "system"


@dataclass(frozen=True)
class Route:
    name: str  # the model name runs use
    base_url: str
    api_key: str
    upstream: str  # the model name sent upstream
    context_window: int
    server: str
    tools: bool = True  # the model can call tools; if not, tools are not offered (and cannot be forced)
    vision: bool = True  # the model reads image parts; if not, they reach it as a note in the text
    owned_by: str = "system"
    listed: bool = False  # configured by name, so GET /v1/models shows it

    @property
    def quirks(self) -> Quirks:
        return QUIRKS[self.server]


class BackendsError(ValueError):
    """LLM_BACKENDS / LLM_BACKENDS_FILE cannot be used."""


def default_server(base_url: str) -> str:
    return "openai" if "api.openai.com" in base_url else "generic"


def _raw(settings: Settings) -> dict[str, object]:
    text, source = settings.llm_backends, "LLM_BACKENDS"
    if settings.llm_backends_file:
        source = f"LLM_BACKENDS_FILE ({settings.llm_backends_file})"
        try:
            text = Path(settings.llm_backends_file).read_text()
        except OSError as exc:
            raise BackendsError(f"{source} cannot be read: {exc.strerror}") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendsError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BackendsError(f"{source} must be a JSON object mapping model names to backends")
    return data


def _default_route(name: str, settings: Settings, listed: bool) -> Route:
    upstream = settings.llm_model_map.get(name) or settings.llm_default_model or name
    return Route(name=name, base_url=settings.llm_base_url, api_key=settings.llm_api_key, upstream=upstream,
                 context_window=settings.llm_context_windows.get(upstream, settings.llm_default_context_window),
                 server=settings.llm_server or default_server(settings.llm_base_url), listed=listed)


def _configured(name: str, cfg: RouteConfig, settings: Settings) -> Route:
    if cfg.base_url is None:
        base_url, key = settings.llm_base_url, settings.llm_api_key
        server = settings.llm_server or default_server(base_url)
    else:
        # Another host never gets the default backend's key by accident.
        base_url, key, server = cfg.base_url, "none", default_server(cfg.base_url)
    if cfg.api_key_env:
        if cfg.api_key_env not in os.environ:
            raise BackendsError(f"LLM_BACKENDS: model {name!r} takes its key from ${cfg.api_key_env}, which is "
                                "not set")
        key = os.environ[cfg.api_key_env]
    elif cfg.api_key is not None:
        key = cfg.api_key
    upstream = cfg.model or name
    window = cfg.context_window or settings.llm_context_windows.get(upstream, settings.llm_default_context_window)
    return Route(name=name, base_url=base_url, api_key=key or "none", upstream=upstream, context_window=window,
                 server=cfg.server or server, tools=cfg.tools, vision=cfg.vision, owned_by=cfg.owned_by,
                 listed=True)


def build(settings: Settings) -> dict[str, Route]:
    """The configured routes by model name (pure but for reading LLM_BACKENDS_FILE and keys from the env)."""
    if settings.llm_server and settings.llm_server not in QUIRKS:
        raise BackendsError(f"LLM_SERVER must be one of {', '.join(QUIRKS)}, not {settings.llm_server!r}")
    routes = {name: _default_route(name, settings, listed=True) for name in settings.llm_model_map}
    if settings.llm_default_model:
        name = settings.llm_default_model
        routes.setdefault(name, _default_route(name, settings, listed=True))
    for name, entry in _raw(settings).items():
        try:
            cfg = RouteConfig.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BackendsError(f"LLM_BACKENDS: model {name!r}: {where + ': ' if where else ''}{first['msg']}") \
                from exc
        routes[name] = _configured(name, cfg, settings)
    return routes


@lru_cache
def routes() -> dict[str, Route]:
    return build(get_settings())


def route(name: str) -> Route:
    """Where runs of model `name` go: its configured route, else the default backend."""
    return routes().get(name) or _default_route(name, get_settings(), listed=False)


def listed() -> list[Route]:
    """The model names GET /v1/models shows: those configured by name."""
    return sorted(routes().values(), key=lambda r: r.name)
