"""Validation errors are phrased as OpenAI phrases them, with `param` in OpenAI's notation."""

from typing import Any

import pytest
from pydantic import ValidationError

from api.schemas.assistants import AssistantCreate
from api.schemas.threads import MessageCreate
from api.validation import request_validation_error


def error_for(model: Any, data: Any) -> tuple[str | None, str | None, str]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.value.errors()]
    err = request_validation_error(errors)
    assert err.status == 400
    return err.param, err.code, err.message


def test_missing_and_unknown() -> None:
    assert error_for(AssistantCreate, {})[:2] == ("model", "missing_required_parameter")
    assert error_for(AssistantCreate, {"model": "m", "x": 1})[:2] == ("x", "unknown_parameter")


def test_nested_param_paths() -> None:
    param, code, _ = error_for(AssistantCreate, {"model": "m", "tools": [{"type": "code_interpreter"},
                                                                         {"type": "function", "function": {}}]})
    assert (param, code) == ("tools[1].function.name", "missing_required_parameter")


def test_union_member_labels_are_not_params() -> None:
    param, code, message = error_for(MessageCreate, {"role": "user", "content": ""})
    assert (param, code) == ("content", "string_below_min_length")
    assert "content" in message


def test_lengths() -> None:
    param, code, message = error_for(AssistantCreate, {"model": "m", "name": "x" * 300})
    assert (param, code) == ("name", "string_above_max_length")
    assert "maximum length 256" in message and "length 300" in message


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({str(i): "v" for i in range(17)}, "at most 16 properties"),
        ({"k" * 65: "v"}, "maximum length 64"),
        ({"k": "v" * 513}, "maximum length 512"),
    ],
)
def test_metadata_limits(metadata: dict[str, str], fragment: str) -> None:
    param, _, message = error_for(AssistantCreate, {"model": "m", "metadata": metadata})
    assert param == "metadata" and fragment in message


def test_metadata_at_limits_is_fine() -> None:
    AssistantCreate.model_validate({"model": "m", "metadata": {f"{i:064}": "v" * 512 for i in range(16)}})


def test_json_decode_error() -> None:
    err = request_validation_error([{"type": "json_invalid", "loc": ("body", 10), "msg": "x", "input": {}}])
    assert err.message.startswith("We could not parse the JSON body")
