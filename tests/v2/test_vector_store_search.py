"""POST /v1/vector_stores/{id}/search and GET /v1/vector_stores/{id}/files/{file_id}/content through the SDK: the
hybrid search runs use, with attribute filters (comparison and compound), several queries, result limits, a score
threshold and query rewriting; a file's parsed text."""

from typing import Any

import httpx
import openai
import pytest

from tests.stack import Stack
from tests.v2.test_file_search import GARDEN, REACTOR, upload

PUMPS = ("Pump maintenance log. The hydraulic pumps on deck seven were replaced in 2020; part number QX-7781 "
         "is the impeller. Spare impellers sit in locker 12.\n")


@pytest.fixture(scope="module")
def store(fresh_client: openai.OpenAI) -> dict[str, str]:
    client = fresh_client
    files = {"reactor": (upload(client, "reactor.md", REACTOR), {"team": "ops", "year": 2024, "public": True}),
             "garden": (upload(client, "garden.txt", GARDEN), {"team": "botany", "year": 2022, "public": False}),
             "pumps": (upload(client, "pumps.md", PUMPS), {"team": "ops", "year": 2020, "region": "deck7"})}
    vs = client.vector_stores.create(name="search")
    for file_id, attributes in files.values():
        f = client.vector_stores.files.create_and_poll(file_id=file_id, vector_store_id=vs.id, attributes=attributes,
                                                       poll_interval_ms=100)
        assert f.status == "completed", f
    return {"vs": vs.id, **{name: file_id for name, (file_id, _) in files.items()}}


def found(client: openai.OpenAI, store: dict[str, str], query: str | list[str], **kw: Any) -> list[str]:
    """The names of the files the results come from, best first (without repeats)."""
    names = {v: k for k, v in store.items()}
    page = client.vector_stores.search(store["vs"], query=query, **kw)
    return list(dict.fromkeys(names[r.file_id] for r in page.data))


def test_search_returns_the_best_chunks_with_their_file(fresh_client: openai.OpenAI, store: dict[str, str]) -> None:
    page = fresh_client.vector_stores.search(store["vs"], query="How is the reactor cooled?")
    best = page.data[0]
    assert best.file_id == store["reactor"] and best.filename == "reactor.md"
    assert 0 < best.score <= 1 and best.content[0].type == "text" and "helium-3" in best.content[0].text
    assert best.attributes == {"team": "ops", "year": 2024, "public": True}
    # Exact codes are found by the full-text half of the hybrid search.
    assert found(fresh_client, store, "QX-7781")[0] == "pumps"
    assert len(fresh_client.vector_stores.search(store["vs"], query="pumps", max_num_results=1).data) == 1
    assert fresh_client.vector_stores.search(store["vs"], query="reactor", ranking_options={
        "score_threshold": 1.0}).data == []


@pytest.mark.parametrize(("filters", "expected"), [
    ({"type": "eq", "key": "team", "value": "ops"}, {"reactor", "pumps"}),
    ({"type": "ne", "key": "team", "value": "ops"}, {"garden"}),
    ({"type": "gte", "key": "year", "value": 2022}, {"reactor", "garden"}),
    ({"type": "lt", "key": "year", "value": 2022.5}, {"garden", "pumps"}),
    ({"type": "gt", "key": "year", "value": "2000"}, set()),  # a string is not compared with numbers
    ({"type": "eq", "key": "year", "value": 2024.0}, {"reactor"}),  # numbers compare as numbers
    ({"type": "eq", "key": "public", "value": True}, {"reactor"}),
    ({"type": "in", "key": "team", "value": ["botany", "kitchen"]}, {"garden"}),
    ({"type": "nin", "key": "year", "value": [2020, 2022]}, {"reactor"}),
    ({"type": "ne", "key": "region", "value": "deck7"}, {"reactor", "garden"}),  # no such key: not equal
    ({"type": "eq", "key": "region", "value": "deck7"}, {"pumps"}),
    ({"type": "and", "filters": [{"type": "eq", "key": "team", "value": "ops"},
                                 {"type": "gte", "key": "year", "value": 2024}]}, {"reactor"}),
    ({"type": "or", "filters": [{"type": "lt", "key": "year", "value": 2021},
                                {"type": "eq", "key": "team", "value": "botany"}]}, {"garden", "pumps"}),
    ({"type": "and", "filters": [{"type": "eq", "key": "team", "value": "ops"}, {"type": "or", "filters": [
        {"type": "eq", "key": "public", "value": True}, {"type": "eq", "key": "region", "value": "deck7"}]}]},
     {"reactor", "pumps"}),
    ({"type": "and", "filters": []}, {"reactor", "garden", "pumps"}),
    ({"type": "or", "filters": []}, set()),
])
def test_filters_on_file_attributes(fresh_client: openai.OpenAI, store: dict[str, str], filters: dict[str, Any],
                                    expected: set[str]) -> None:
    # A query every file answers somewhat: what decides is the filter.
    got = found(fresh_client, store, ["station deck maintenance", "reactor tomatoes pumps"], filters=filters,
                max_num_results=50)
    assert set(got) == expected


def test_several_queries_and_rewriting(stack: Stack, fresh_client: openai.OpenAI, store: dict[str, str]) -> None:
    both = found(fresh_client, store, ["reactor coolant pressure", "watering tomatoes"], max_num_results=4)
    assert {"reactor", "garden"} <= set(both)
    headers = {"Authorization": f"Bearer {fresh_client.api_key}"}
    r = httpx.post(f"{stack.base_url}/vector_stores/{store['vs']}/search", headers=headers, json={
        "query": "What is the coolant pressure of the reactor?", "rewrite_query": True}, timeout=60)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["object"] == "vector_store.search_results.page" and page["has_more"] is False
    assert page["next_page"] is None and page["search_query"] == ["coolant pressure reactor"]
    assert page["data"][0]["file_id"] == store["reactor"]
    plain = httpx.post(f"{stack.base_url}/vector_stores/{store['vs']}/search", headers=headers,
                       json={"query": "Basil?"}, timeout=60).json()
    assert plain["search_query"] == ["Basil?"]


@pytest.mark.parametrize(("body", "param"), [
    ({"query": "x", "filters": {"type": "eq", "key": "team"}}, "filters.value"),
    ({"query": "x", "filters": {"type": "and", "filters": [{"type": "bogus", "key": "a", "value": 1}]}},
     "filters.filters[0].type"),
    ({"query": "x", "filters": {"type": "or", "filters": [{"type": "eq", "key": "a", "value": {"b": 1}}]}},
     "filters.filters[0].value"),
    ({"query": "x", "filters": {"type": "eq", "key": "a", "value": 1, "extra": 2}}, "filters.extra"),
    ({"query": "x", "filters": {"key": "a", "value": 1}}, "filters.type"),
    ({"query": "x", "max_num_results": 51}, "max_num_results"),
    ({"query": "x", "ranking_options": {"score_threshold": 2}}, "ranking_options.score_threshold"),
    ({"query": "x", "ranking_options": {"ranker": "best"}}, "ranking_options.ranker"),
    ({"filters": {"type": "eq", "key": "a", "value": 1}}, "query"),
])
def test_bad_searches_are_refused(stack: Stack, fresh_client: openai.OpenAI, store: dict[str, str],
                                  body: dict[str, Any], param: str) -> None:
    r = httpx.post(f"{stack.base_url}/vector_stores/{store['vs']}/search", json=body, timeout=60,
                   headers={"Authorization": f"Bearer {fresh_client.api_key}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_another_projects_store_is_not_found(other_client: openai.OpenAI, store: dict[str, str]) -> None:
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.search(store["vs"], query="reactor")
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.files.content(store["reactor"], vector_store_id=store["vs"])


def test_file_content_is_the_parsed_text(fresh_client: openai.OpenAI, store: dict[str, str]) -> None:
    page = fresh_client.vector_stores.files.content(store["reactor"], vector_store_id=store["vs"])
    assert "".join(part.text or "" for part in page.data) == REACTOR
    assert all(part.type == "text" for part in page.data)
    assert page.has_next_page() is False
    with pytest.raises(openai.NotFoundError):  # a File of the project, but not in this store
        fresh_client.vector_stores.files.content(upload(fresh_client, "x.md", "x"), vector_store_id=store["vs"])


def test_content_of_a_file_file_search_cannot_read_is_empty(fresh_client: openai.OpenAI) -> None:
    file_id = upload(fresh_client, "image.bmp", b"BM\x00\x01\x02")
    vs = fresh_client.vector_stores.create(file_ids=[file_id])
    f = fresh_client.vector_stores.files.poll(file_id, vector_store_id=vs.id, poll_interval_ms=100)
    assert f.status == "failed"
    assert fresh_client.vector_stores.files.content(file_id, vector_store_id=vs.id).data == []
