"""What separates the v1 and v2 API shapes on the way in. (Rendering per shape lives with each resource.)"""

from collections.abc import Sequence

from pydantic import BaseModel

from api.deps import Version
from api.errors import APIError

V1_ONLY = {"file_ids"}
V2_ONLY = {"tool_resources", "attachments"}


def check_fields(body: BaseModel, version: Version, *, v1_only: set[str], v2_only: set[str]) -> None:
    """A field of the other shape is an unknown argument, as it was on OpenAI."""
    foreign = v2_only if version == "v1" else v1_only
    for name in body.model_fields_set & foreign:
        hint = f" (the 'assistants={'v2' if version == 'v1' else 'v1'}' API shape has it)"
        raise APIError(400, f"Unrecognized request argument supplied: {name}{hint}", param=name,
                       code="unknown_parameter")


def canonical_tools(tools: Sequence[BaseModel], version: Version, param: str = "tools") -> list[dict[str, object]]:
    """Tools in storage form (v2's): v1's `retrieval` becomes `file_search`; each shape accepts only its names."""
    out: list[dict[str, object]] = []
    for i, tool in enumerate(tools):
        data = tool.model_dump(exclude_none=True)
        kind = data["type"]
        if version == "v1" and kind == "file_search":
            raise APIError(400, "Invalid value: 'file_search'. Supported values are: 'code_interpreter', "
                           "'retrieval', and 'function'.", param=f"{param}[{i}].type", code="invalid_value")
        if version == "v2" and kind == "retrieval":
            raise APIError(400, "The `retrieval` tool type is not supported with 'assistants=v2'. Please use "
                           "`file_search` instead.", param=f"{param}[{i}].type", code="invalid_value")
        if kind == "retrieval":
            data = {"type": "file_search"}
        out.append(data)
    return out


def render_tools(tools: list[dict[str, object]], version: Version) -> list[dict[str, object]]:
    if version == "v2":
        return tools
    return [{"type": "retrieval"} if t["type"] == "file_search" else t for t in tools]


def has_tool(tools: list[dict[str, object]], kind: str) -> bool:
    return any(t.get("type") == kind for t in tools)
