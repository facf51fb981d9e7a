"""Turns pydantic/FastAPI validation errors into OpenAI's 400s: `param` names the offending field in
OpenAI's notation (`tools[0].function.name`) and the message says what was expected."""

import re
from collections.abc import Sequence
from typing import Any

from api.errors import APIError

_JSON_HINT = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)

_TYPE_NAMES = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "a boolean",
    "bool_parsing": "a boolean", "list_type": "an array", "dict_type": "an object",
    "model_type": "an object", "model_attributes_type": "an object", "literal_error": None,
}


# Labels pydantic puts in `loc` for a member of a union ("constrained-str", "list[ContentPart]", "int"):
# they name a type, not a field, so they are not part of OpenAI's `param`.
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|[a-z]+-[a-z-]+(\[.*\])?|\w+\[.*\])$")


def _param(loc: Sequence[Any]) -> str | None:
    """('body', 'tools', 0, 'type') -> 'tools[0].type'"""
    parts = [p for p in loc[1:] if not (isinstance(p, str) and _UNION_MEMBER.match(p))]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _number_kind(value: Any, ctx: dict[str, Any]) -> str:
    """OpenAI says "integer" or "decimal" in range error codes; query values arrive as strings."""
    bound = next((ctx[k] for k in ("ge", "gt", "le", "lt") if k in ctx), None)
    return "integer" if isinstance(bound, int) and not isinstance(value, float) else "decimal"


def request_validation_error(errors: Sequence[Any], content_type: str | None = None) -> APIError:
    """The first error, phrased as OpenAI phrases it."""
    err = errors[0]
    if tuple(err.get("loc", ())) == ("body",) and isinstance(err.get("input"), bytes | bytearray):
        # FastAPI hands over raw bytes when the Content-Type is not JSON.
        return APIError(400, f"Invalid Content-Type header ({content_type}), expected application/json.",
                        code="invalid_content_type")
    etype: str = err.get("type", "")
    loc = err.get("loc", ())
    param = _param(loc)
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if etype == "json_invalid":
        return APIError(400, _JSON_HINT)
    if loc and tuple(loc) == ("body",) and etype in ("model_attributes_type", "dict_type", "missing"):
        if etype == "missing":
            return APIError(400, "Missing request body: expected a JSON object.")
        return APIError(400, f"Invalid body: expected a JSON object, but got {_json_type(value)} instead.")
    if etype == "missing":
        return APIError(400, f"Missing required parameter: '{param}'.", param=param,
                        code="missing_required_parameter")
    if etype == "extra_forbidden":
        return APIError(400, f"Unrecognized request argument supplied: {param}", param=param,
                        code="unknown_parameter")
    if etype == "string_too_long":
        return APIError(400, f"Invalid '{param}': string too long. Expected a string with maximum length "
                        f"{ctx.get('max_length')}, but got a string with length {len(value)} instead.",
                        param=param, code="string_above_max_length")
    if etype == "string_too_short":
        return APIError(400, f"Invalid '{param}': string too short. Expected a string with minimum length "
                        f"{ctx.get('min_length')}, but got an empty string instead.",
                        param=param, code="string_below_min_length")
    if etype == "too_long":
        return APIError(400, f"Invalid '{param}': array too long. Expected an array with maximum length "
                        f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} "
                        "instead.", param=param, code="array_above_max_length")
    if etype == "too_short":
        return APIError(400, f"Invalid '{param}': empty array. Expected an array with minimum length "
                        f"{ctx.get('min_length')}, but got an empty array instead.",
                        param=param, code="empty_array")
    if etype in ("less_than_equal", "less_than"):
        return APIError(400, f"Invalid '{param}': above maximum value. Expected a value <= "
                        f"{ctx.get('le', ctx.get('lt'))}, but got {value} instead.",
                        param=param, code=f"{_number_kind(value, ctx)}_above_max_value")
    if etype in ("greater_than_equal", "greater_than"):
        return APIError(400, f"Invalid '{param}': below minimum value. Expected a value >= "
                        f"{ctx.get('ge', ctx.get('gt'))}, but got {value} instead.",
                        param=param, code=f"{_number_kind(value, ctx)}_below_min_value")
    if etype in ("literal_error", "enum"):
        return APIError(400, f"Invalid value: '{value}'. Supported values are: {ctx.get('expected')}.",
                        param=param, code="invalid_value")
    if etype in _TYPE_NAMES:
        return APIError(400, f"Invalid type for '{param}': expected {_TYPE_NAMES[etype]}, but got "
                        f"{_json_type(value)} instead.", param=param, code="invalid_type")
    if etype == "value_error":
        msg = str(ctx.get("error") or err.get("msg", "Invalid value."))
        return APIError(400, msg, param=param, code="invalid_value")
    return APIError(400, f"Invalid '{param}': {err.get('msg', 'invalid value')}.", param=param,
                    code="invalid_value")
