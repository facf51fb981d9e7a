"""GET /v1/threads over raw HTTP: the list object in both API shapes, cursors, and bad queries as OpenAI errors."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.http.test_bad_input import envelope
from tests.stack import Stack


@pytest.fixture(scope="module")
def project(stack: Stack) -> Iterator[httpx.Client]:
    """A client of a new, empty project (its lists hold only what this module created), no beta header."""
    key = stack.new_key(f"threads-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        yield c


V1 = {"OpenAI-Beta": "assistants=v1"}
V2 = {"OpenAI-Beta": "assistants=v2"}


def test_list_in_both_shapes(project: httpx.Client) -> None:
    assert project.get("/threads", headers=V2).json() == {"object": "list", "data": [], "first_id": None,
                                                           "last_id": None, "has_more": False}
    a = project.post("/threads", headers=V2, json={"metadata": {"k": "a"}}).json()
    b = project.post("/threads", headers=V1, json={}).json()

    v2 = project.get("/threads", headers=V2).json()
    assert [t["id"] for t in v2["data"]] == [b["id"], a["id"]]
    assert (v2["first_id"], v2["last_id"], v2["has_more"]) == (b["id"], a["id"], False)
    assert v2["data"][1] == {"id": a["id"], "object": "thread", "created_at": a["created_at"],
                             "metadata": {"k": "a"}, "tool_resources": {}}
    v1 = project.get("/threads", headers=V1).json()
    assert [set(t) for t in v1["data"]] == [{"id", "object", "created_at", "metadata"}] * 2

    page = project.get("/threads", headers=V2, params={"limit": 1, "order": "asc"}).json()
    assert [t["id"] for t in page["data"]] == [a["id"]] and page["has_more"] is True
    page = project.get("/threads", headers=V2, params={"limit": 1, "order": "asc", "after": a["id"]}).json()
    assert [t["id"] for t in page["data"]] == [b["id"]] and page["has_more"] is False
    page = project.get("/threads", headers=V2, params={"before": a["id"]}).json()
    assert [t["id"] for t in page["data"]] == [b["id"]]


def test_bad_queries(project: httpx.Client) -> None:
    assert envelope(project.get("/threads", headers=V2, params={"limit": "abc"}), 400)["param"] == "limit"
    assert envelope(project.get("/threads", headers=V2, params={"limit": 0}), 400)["code"] == \
        "integer_below_min_value"
    assert envelope(project.get("/threads", headers=V2, params={"order": "new"}), 400)["param"] == "order"
    err = envelope(project.get("/threads", headers=V2, params={"after": "thread_nope"}), 400)
    assert (err["param"], err["code"]) == ("after", "invalid_value")
    assert envelope(project.get("/threads"), 400)["code"] == "invalid_beta"
    assert envelope(project.get("/threads", headers={**V2, "Authorization": ""}), 401)["type"] == \
        "invalid_request_error"
