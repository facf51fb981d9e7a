"""`POST /v1/vector_stores/{id}/search`'s side of file_search: the same hybrid search the runs use
(worker/retrieval.py), narrowed by filters on the files' attributes, with the query optionally rewritten.

Filters follow the spec's two shapes: a comparison `{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key",
"value"}` and a compound `{"type": "and"|"or", "filters": [...]}`, nested. They become a SQL condition on the
file's `attributes` (JSONB), values always bound as parameters. Semantics: `eq`/`ne` compare JSON values (so 3 and
3.0 are equal, "3" and 3 are not); ordering comparisons hold only between values of the same JSON type (numbers
with numbers, strings with strings, by the database's collation); `in`/`nin` test membership in the value's list;
a file without the key matches `ne` and `nin` and nothing else.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from worker import retrieval

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 8
MAX_CONDITIONS = 64
_ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
ATTRIBUTES = "vsf.attributes"


class FilterError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message, self.param = message, param


def _scalar(v: Any) -> bool:
    return isinstance(v, str | bool | int | float)


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "string" if isinstance(v, str) else "array"


class _Compiler:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.count = 0

    def bind(self, value: Any) -> str:
        name = f"filter_{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def node(self, f: Any, param: str, depth: int) -> str:
        if not isinstance(f, dict):
            raise FilterError(f"Invalid '{param}': expected an object.", param)
        kind = f.get("type")
        if kind in COMPOUNDS:
            return self.compound(f, param, depth)
        if kind in COMPARISONS:
            return self.comparison(f, param)
        if kind is None:
            raise FilterError(f"Missing required parameter: '{param}.type'.", f"{param}.type")
        raise FilterError(f"Invalid value for '{param}.type': '{kind}'. Supported values are: "
                          + ", ".join(f"'{k}'" for k in (*COMPARISONS, *COMPOUNDS)) + ".", f"{param}.type")

    def compound(self, f: dict[str, Any], param: str, depth: int) -> str:
        _only(f, {"type", "filters"}, param)
        if depth >= MAX_DEPTH:
            raise FilterError(f"Invalid '{param}': filters may nest at most {MAX_DEPTH} levels.", param)
        parts = f.get("filters")
        if not isinstance(parts, list):
            raise FilterError(f"Invalid '{param}.filters': expected an array of filters.", f"{param}.filters")
        if not parts:
            return "TRUE" if f["type"] == "and" else "FALSE"
        joined = f" {f['type'].upper()} ".join(self.node(p, f"{param}.filters[{i}]", depth + 1)
                                               for i, p in enumerate(parts))
        return f"({joined})"

    def comparison(self, f: dict[str, Any], param: str) -> str:
        _only(f, {"type", "key", "value"}, param)
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise FilterError(f"Invalid '{param}': at most {MAX_CONDITIONS} comparisons per search.", param)
        key, value, op = f.get("key"), f.get("value"), f["type"]
        if not isinstance(key, str):
            raise FilterError(f"Invalid '{param}.key': expected a string.", f"{param}.key")
        if "value" not in f or not (_scalar(value) or (isinstance(value, list) and all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value))):
            raise FilterError(f"Invalid '{param}.value': expected a string, number, boolean or an array of strings "
                              "and numbers.", f"{param}.value")
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
            raise FilterError(f"Invalid '{param}.value': numbers must be finite.", f"{param}.value")
        attr = f"{ATTRIBUTES} -> {self.bind(key)}"  # the file's value for the key (NULL without it)
        if op in ("in", "nin"):
            members = value if isinstance(value, list) else [value]
            member = f"COALESCE(CAST({self.bind(json.dumps(members))} AS jsonb) @> jsonb_build_array({attr}), false)"
            return member if op == "in" else f"NOT {member}"
        literal = f"CAST({self.bind(json.dumps(value))} AS jsonb)"
        if op == "eq":
            return f"COALESCE(({attr}) = {literal}, false)"
        if op == "ne":
            return f"({attr}) IS DISTINCT FROM {literal}"
        same_type = f"jsonb_typeof({attr}) = {self.bind(_json_type(value))}"
        return f"COALESCE({same_type} AND ({attr}) {_ORDER[op]} {literal}, false)"


def _only(f: dict[str, Any], allowed: set[str], param: str) -> None:
    for name in f:
        if name not in allowed:
            raise FilterError(f"Unrecognized request argument supplied: {param}.{name}", f"{param}.{name}")


def compile_filters(filters: Any, param: str = "filters") -> retrieval.Where:
    """The filters as a condition on `vsf.attributes`; FilterError names the offending part."""
    c = _Compiler()
    sql = c.node(filters, param, 0)
    return retrieval.Where(sql, c.params)


# A natural-language question carries words that only make it a question; the search wants the rest. (Negations
# stay: "not refundable" is not "refundable".)
_FILLER_WORDS = """a about above after again all am an and any are as at be been being below between both but by
can could did do does doing during each for from further had has have having how i if in into is it its itself
just me my myself of off on once or our ours out over own please she should so some such tell than that the their
theirs them then there these they this those through to too under until up was we were what when where which while
who whom why will with would you your yours find show give know"""
_FILLER = frozenset(_FILLER_WORDS.split())
_WORD = re.compile(r"\w[\w'\u2019.-]*\w|\w")


def rewrite(query: str) -> str:
    """The query's content words, in order, without what only makes it a question ("what is the … ?"); no model
    is called (the API never calls one). A query of nothing but such words is kept as it was."""
    words = [w for w in _WORD.findall(query) if w.lower() not in _FILLER]
    return " ".join(words) if words else query.strip()


@dataclass
class Result:
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any]
    text: str


def search_store(conn: Connection, *, project_id: str, vector_store_id: str, queries: list[str], limit: int,
                 score_threshold: float, where: retrieval.Where | None) -> list[Result]:
    """The store's best chunks for the queries, each with its file's attributes (the caller commits)."""
    retrieval.touch(conn, project_id, [vector_store_id])
    hits = retrieval.search(conn, project_id, [vector_store_id], queries, limit=limit,
                            score_threshold=score_threshold, where=where)
    attributes: dict[str, Any] = {}
    if hits:
        attributes = dict(conn.execute(text("SELECT file_id, attributes FROM vector_store_file "
                                            "WHERE vector_store_id = :vs AND file_id = ANY(:ids)"),
                                       {"vs": vector_store_id, "ids": list({h.file_id for h in hits})}).tuples().all())
    return [Result(h.file_id, h.filename, round(h.score, 6), attributes.get(h.file_id) or {}, h.text) for h in hits]
