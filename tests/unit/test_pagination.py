"""In-memory pagination follows the same rules as the database pagination (checked end to end elsewhere)."""

import pytest

from api.errors import APIError
from api.pagination import Page, list_body, page_list

ITEMS = [f"id{i}" for i in range(10)]  # ascending creation order


def ids(limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None) -> list[str]:
    rows, _ = page_list(ITEMS, Page(limit, order, after, before), key=lambda x: x)  # type: ignore[arg-type]
    return rows


def test_orders() -> None:
    assert ids() == ITEMS[::-1]
    assert ids(order="asc") == ITEMS


def test_cursors() -> None:
    assert ids(order="asc", after="id3", limit=2) == ["id4", "id5"]
    assert ids(order="desc", after="id3", limit=2) == ["id2", "id1"]
    assert ids(order="asc", before="id3", limit=2) == ["id1", "id2"]
    assert ids(order="desc", before="id3", limit=2) == ["id5", "id4"]
    assert ids(order="asc", after="id2", before="id6") == ["id3", "id4", "id5"]


def test_has_more() -> None:
    assert page_list(ITEMS, Page(10, "asc", None, None), key=lambda x: x)[1] is False
    assert page_list(ITEMS, Page(9, "asc", None, None), key=lambda x: x)[1] is True


def test_unknown_cursor() -> None:
    with pytest.raises(APIError) as err:
        ids(after="nope")
    assert err.value.status == 400 and err.value.param == "after"


def test_list_body() -> None:
    assert list_body([], False) == {"object": "list", "data": [], "first_id": None, "last_id": None,
                                    "has_more": False}
    body = list_body([{"id": "a"}, {"id": "b"}], True)
    assert (body["first_id"], body["last_id"], body["has_more"]) == ("a", "b", True)
