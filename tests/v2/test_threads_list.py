"""GET /v1/threads (an extension: the hosted API listed threads only for its dashboard) through the current SDK.

The SDK has no `beta.threads.list`, so the test lists the way the SDK's own list methods do: `get_api_list` with
its cursor page type, which is also what auto-pagination (`for t in page`) and `has_next_page()` run on.
"""

from typing import Any

import openai
import pytest
from openai.pagination import SyncCursorPage
from openai.types.beta import Thread

V2 = {"OpenAI-Beta": "assistants=v2"}


def list_threads(client: openai.OpenAI, **params: Any) -> SyncCursorPage[Thread]:
    return client.get_api_list("/threads", model=Thread, page=SyncCursorPage[Thread],
                               options={"params": params, "headers": V2})


def test_list_threads_newest_first_with_cursor_pagination(fresh_client: openai.OpenAI,
                                                          client: openai.OpenAI) -> None:
    assert list_threads(fresh_client).data == []
    ids = [fresh_client.beta.threads.create(metadata={"n": str(i)}).id for i in range(25)]

    first = list_threads(fresh_client)
    assert [t.id for t in first.data] == ids[::-1][:20] and first.has_more
    assert first.data[0].object == "thread" and first.data[0].metadata == {"n": "24"}
    assert isinstance(first.data[0], Thread) and first.data[0].tool_resources is not None
    assert [t.id for t in first] == ids[::-1]  # auto-pagination follows `after=last_id`
    assert [t.id for t in list_threads(fresh_client, order="asc", limit=5).data] == ids[:5]
    assert [t.id for t in list_threads(fresh_client, order="asc", after=ids[20])] == ids[21:]
    page = list_threads(fresh_client, before=ids[10], limit=3)  # newest first: the three just newer than ids[10]
    assert [t.id for t in page.data] == [ids[13], ids[12], ids[11]] and page.has_more

    fresh_client.beta.threads.delete(ids[24])
    assert list_threads(fresh_client, limit=1).data[0].id == ids[23]
    # Another project's threads are not listed, and its ids are no cursor here.
    mine = client.beta.threads.create().id
    assert mine not in [t.id for t in list_threads(fresh_client)]
    with pytest.raises(openai.BadRequestError) as err:
        list_threads(fresh_client, after=mine)
    assert err.value.body["param"] == "after"


def test_list_threads_validation(fresh_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        list_threads(fresh_client, limit=101)
    assert err.value.body["param"] == "limit"
    with pytest.raises(openai.BadRequestError) as err:
        list_threads(fresh_client, order="newest")
    assert err.value.body["param"] == "order"
