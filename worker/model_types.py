"""What the model client takes and gives: a model turn's request and result, and how it can fail."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    id: str
    name: str = ""
    arguments: str = ""


@dataclass
class ModelRequest:
    model: str  # the run's model name: the route to the backend
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None  # OpenAI's Chat Completions meaning: "auto", "none", "required" or a named function
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
    # The server sent no usage (or zeros): the token counts are estimated from the characters sent and received.
    usage_estimated: bool = False


class ModelError(Exception):
    """A failure the run reports as `last_error` {code, message}."""

    def __init__(self, code: str, message: str, transient: bool) -> None:
        super().__init__(message)
        self.code, self.message, self.transient = code, message, transient


class Stopped(Exception):
    """The caller asked to stop (the run was cancelled); nothing of the call is kept."""
