"""How a model turn's tool calls are recorded on a run step, and what the client is asked for. Pure.

code_interpreter and file_search calls are the server's to run (worker/server_tools.py); function calls are the
client's, through `requires_action`.
"""

from typing import Any

from worker import code_tool, retrieval


def is_server_call(name: str, tools: list[dict[str, Any]]) -> bool:
    return code_tool.is_code_call(name, tools) or retrieval.is_search_call(name, tools)


def function_entry(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments, "output": None}}


def step_entry(call_id: str, name: str, arguments: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    if code_tool.is_code_call(name, tools):
        return code_tool.step_entry(call_id, arguments)
    if retrieval.is_search_call(name, tools):
        return retrieval.step_entry(call_id, arguments)
    return function_entry(call_id, name, arguments)


def required_action(functions: list[dict[str, Any]]) -> dict[str, Any]:
    """What the client must answer: the turn's function calls (server-side calls are not its business)."""
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
        {"id": c["id"], "type": "function",
         "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
        for c in functions]}}


def has_code(calls: list[dict[str, Any]]) -> bool:
    return any(c.get("type") == "code_interpreter" for c in calls)
