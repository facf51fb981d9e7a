"""What a run asks of the model, in OpenAI's Chat Completions terms: the tools it is offered, which it must call,
the sampling settings. Which server answers, and how it must be asked, is the model client's business
(worker/model.py); this module only translates the run's settings."""

from typing import Any

from shared.models import Run
from worker import code_tool, retrieval
from worker.model_types import ModelRequest


def build(run: Run, messages: list[dict[str, Any]]) -> ModelRequest:
    tools = function_tools(run.tools)
    return ModelRequest(
        model=run.model, messages=messages, tools=tools,
        tool_choice=tool_choice(run.tool_choice, answered=any(m.get("role") == "tool" for m in messages))
        if tools else None,
        parallel_tool_calls=run.parallel_tool_calls, temperature=run.temperature, top_p=run.top_p,
        response_format=response_format(run.response_format), max_tokens=run.max_completion_tokens)


def function_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools the model is offered: the run's functions, and code_interpreter as a function the model calls
    with Python code, file_search as a function taking a query."""
    offered = [{"type": "function", "function": t["function"]} for t in tools if t.get("type") == "function"]
    if any(t.get("type") == "code_interpreter" for t in tools):
        offered.append(code_tool.DEFINITION)
    if any(t.get("type") in ("file_search", "retrieval") for t in tools):
        offered.append(retrieval.DEFINITION)
    return offered


_BUILTIN = {"code_interpreter": code_tool.NAME, "file_search": retrieval.NAME, "retrieval": retrieval.NAME}


def tool_choice(choice: Any, *, answered: bool) -> Any:
    """The run's `tool_choice` for this model turn. `required` and a named tool mean, in OpenAI's words, that the
    model "must call one or more tools before responding to the user": they force the run's turns until a tool
    has been called and answered (`answered`: the prompt carries a tool result of this run), then the model
    chooses, so that a forced tool does not loop forever. Absent means `auto`, said explicitly because some
    servers (llama-cpp-python) ignore tools without it."""
    if choice is None or choice == "auto":
        return "auto"
    if choice == "none":
        return "none"
    if answered:
        return "auto"
    if isinstance(choice, dict):
        kind = choice.get("type")
        name = (choice.get("function") or {}).get("name") if kind == "function" else _BUILTIN.get(str(kind))
        if name:
            return {"type": "function", "function": {"name": name}}
    return "required"


def response_format(rf: Any) -> Any:
    return rf if isinstance(rf, dict) and rf.get("type") != "text" else None
