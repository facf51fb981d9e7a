"""The v1/v2 mapping of tools."""

import pytest

from api.errors import APIError
from api.schemas.common import ToolParam
from api.shapes import canonical_tools, render_tools


def tools(*kinds: str) -> list[ToolParam]:
    return [ToolParam.model_validate({"type": k} if k != "function" else
                                     {"type": k, "function": {"name": "f"}}) for k in kinds]


def test_retrieval_is_stored_as_file_search_and_rendered_back() -> None:
    stored = canonical_tools(tools("retrieval", "code_interpreter"), "v1")  # type: ignore[arg-type]
    assert stored == [{"type": "file_search"}, {"type": "code_interpreter"}]
    assert render_tools(stored, "v1") == [{"type": "retrieval"}, {"type": "code_interpreter"}]
    assert render_tools(stored, "v2") == stored


def test_each_shape_accepts_only_its_names() -> None:
    with pytest.raises(APIError) as err:
        canonical_tools(tools("code_interpreter", "file_search"), "v1")  # type: ignore[arg-type]
    assert err.value.param == "tools[1].type"
    with pytest.raises(APIError):
        canonical_tools(tools("retrieval"), "v2")  # type: ignore[arg-type]


def test_function_definitions_survive() -> None:
    stored = canonical_tools(tools("function"), "v2")  # type: ignore[arg-type]
    assert stored == [{"type": "function", "function": {"name": "f"}}]
