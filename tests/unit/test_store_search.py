"""The vector store search's filters (compiled to SQL with every value bound) and query rewriting, without a
database; what the filters select is tested end to end in tests/v2/test_vector_store_search.py."""

import json

import pytest

from worker.store_search import MAX_CONDITIONS, MAX_DEPTH, FilterError, compile_filters, rewrite


def test_values_and_keys_are_bound_never_spliced() -> None:
    where = compile_filters({"type": "and", "filters": [
        {"type": "eq", "key": "team'; DROP TABLE chunk; --", "value": "o'ps"},
        {"type": "in", "key": "year", "value": [2020, 2021]}]})
    assert "DROP" not in where.sql and "o'ps" not in where.sql
    assert "team'; DROP TABLE chunk; --" in where.params.values()
    assert json.dumps("o'ps") in where.params.values() and json.dumps([2020, 2021]) in where.params.values()
    assert where.sql.startswith("(") and " AND " in where.sql


def test_ordering_compares_only_values_of_the_same_json_type() -> None:
    where = compile_filters({"type": "gt", "key": "year", "value": 2020})
    assert "jsonb_typeof" in where.sql and "number" in where.params.values()
    assert "string" in compile_filters({"type": "lte", "key": "day", "value": "2024-01-01"}).params.values()


def test_a_scalar_in_is_a_one_member_list() -> None:
    assert json.dumps(["ops"]) in compile_filters({"type": "in", "key": "team", "value": "ops"}).params.values()


def test_empty_compounds() -> None:
    assert compile_filters({"type": "and", "filters": []}).sql == "TRUE"
    assert compile_filters({"type": "or", "filters": []}).sql == "FALSE"


@pytest.mark.parametrize(("filters", "param"), [
    ({"type": "eq", "key": "a"}, "filters.value"),
    ({"type": "eq", "value": 1}, "filters.key"),
    ({"type": "eq", "key": "a", "value": None}, "filters.value"),
    ({"type": "eq", "key": "a", "value": [True]}, "filters.value"),
    ({"type": "eq", "key": "a", "value": float("nan")}, "filters.value"),
    ({"type": "xor", "filters": []}, "filters.type"),
    ({"key": "a", "value": 1}, "filters.type"),
    ({"type": "and"}, "filters.filters"),
    ({"type": "and", "filters": [{"type": "or", "filters": ["x"]}]}, "filters.filters[0].filters[0]"),
    ({"type": "and", "filters": [], "key": "a"}, "filters.key"),
    ("eq", "filters"),
])
def test_bad_filters_name_their_part(filters: object, param: str) -> None:
    with pytest.raises(FilterError) as err:
        compile_filters(filters)
    assert err.value.param == param and err.value.message


def test_filters_are_bounded() -> None:
    deep: dict[str, object] = {"type": "eq", "key": "a", "value": 1}
    for _ in range(MAX_DEPTH + 1):
        deep = {"type": "and", "filters": [deep]}
    with pytest.raises(FilterError, match="nest"):
        compile_filters(deep)
    wide = {"type": "or", "filters": [{"type": "eq", "key": "a", "value": i} for i in range(MAX_CONDITIONS + 1)]}
    with pytest.raises(FilterError, match="at most"):
        compile_filters(wide)


def test_rewrite_keeps_what_the_question_is_about() -> None:
    assert rewrite("What is the return policy for damaged items?") == "return policy damaged items"
    assert rewrite("Can you tell me about part number X-9000.5 on deck 7?") == "part number X-9000.5 deck 7"
    assert rewrite("Is it not refundable?") == "not refundable"
    assert rewrite("What is it?") == "What is it?"  # nothing but filler: left as asked
