"""Assistants through the current SDK (assistants=v2)."""

import io
import uuid

import openai
import pytest

from tests.stack import Stack


def test_create_retrieve_update_delete(client: openai.OpenAI) -> None:
    tools = [
        {"type": "code_interpreter"},
        {"type": "file_search", "file_search": {"max_num_results": 5}},
        {"type": "function", "function": {
            "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    ]
    a = client.beta.assistants.create(model="gpt-4-1106-preview", name="Math Tutor", description="d",
                                      instructions="You are a personal math tutor.", tools=tools,
                                      metadata={"team": "math"}, temperature=0.5, top_p=0.9,
                                      response_format={"type": "json_object"})
    assert a.id.startswith("asst_") and a.object == "assistant"
    assert a.name == "Math Tutor" and a.description == "d" and a.model == "gpt-4-1106-preview"
    assert [t.type for t in a.tools] == ["code_interpreter", "file_search", "function"]
    assert a.tools[1].file_search.max_num_results == 5
    assert a.tools[2].function.name == "get_weather"
    assert a.metadata == {"team": "math"} and a.temperature == 0.5 and a.top_p == 0.9
    assert a.response_format.type == "json_object"

    got = client.beta.assistants.retrieve(a.id)
    assert got.model_dump() == a.model_dump()

    updated = client.beta.assistants.update(a.id, name="Renamed", metadata={"team": "science"})
    assert updated.name == "Renamed" and updated.metadata == {"team": "science"}
    assert updated.instructions == "You are a personal math tutor."  # untouched fields stay
    assert len(updated.tools) == 3

    cleared = client.beta.assistants.update(a.id, tools=[], instructions=None)
    assert cleared.tools == [] and cleared.instructions is None

    deleted = client.beta.assistants.delete(a.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (a.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.assistants.retrieve(a.id)
    assert err.value.body["message"] == f"No assistant found with id '{a.id}'."


def test_defaults_render_like_openai(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="gpt-4o")
    assert a.name is None and a.instructions is None and a.tools == [] and a.metadata == {}
    assert a.temperature == 1.0 and a.top_p == 1.0 and a.response_format == "auto"


def test_tool_resources(client: openai.OpenAI) -> None:
    f = client.files.create(file=("data.csv", io.BytesIO(b"x,y\n1,2\n")), purpose="assistants")
    a = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}, {"type": "file_search"}],
                                      tool_resources={"code_interpreter": {"file_ids": [f.id]},
                                                      "file_search": {"vector_stores": [{"file_ids": [f.id]}]}})
    assert a.tool_resources.code_interpreter.file_ids == [f.id]
    [vs_id] = a.tool_resources.file_search.vector_store_ids
    assert vs_id.startswith("vs_")

    # An existing vector store can be referenced by id from another assistant of the same project.
    b = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                      tool_resources={"file_search": {"vector_store_ids": [vs_id]}})
    assert b.tool_resources.file_search.vector_store_ids == [vs_id]

    removed = client.beta.assistants.update(a.id, tool_resources={"code_interpreter": {"file_ids": []}})
    assert removed.tool_resources.code_interpreter is None

    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": ["file-nope"]}})
    assert err.value.body["param"] == "tool_resources.code_interpreter.file_ids"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o", tool_resources={"file_search": {"vector_store_ids": ["vs_x"]}})
    assert err.value.body["param"] == "tool_resources.file_search.vector_store_ids"


def test_code_interpreter_files_never_touch_file_search(stack: Stack) -> None:
    """In v2, code_interpreter files and file_search stores are separate resources: no request creates, fills or
    replaces a vector store it did not name, and an update changes only the tools its tool_resources name
    (`file_search: {}` names no stores: the spec's vector_store_ids "overrides" and has no default)."""
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.new_key(f"resources-{uuid.uuid4().hex[:8]}"))

    def upload(name: str, data: bytes) -> str:
        return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id

    handbook = upload("handbook.md", b"# Handbook\nCoolant pressure stays between 40 and 45 bar.\n")
    csv, more = upload("data.csv", b"x,y\n1,2\n"), upload("more.csv", b"a\n3\n")
    store = client.vector_stores.create(name="handbook", file_ids=[handbook])
    both = [{"type": "code_interpreter"}, {"type": "file_search"}]
    a = client.beta.assistants.create(model="gpt-4o", tools=both,
                                      tool_resources={"file_search": {"vector_store_ids": [store.id]}})

    def resources(x: object) -> tuple[list[str] | None, list[str] | None]:
        tr = x.tool_resources  # type: ignore[attr-defined]
        return (tr.code_interpreter.file_ids if tr.code_interpreter else None,
                tr.file_search.vector_store_ids if tr.file_search else None)

    # The update, then code_interpreter alone, then other fields: the handbook store stays attached.
    a = client.beta.assistants.update(a.id, tool_resources={"file_search": {}, "code_interpreter": {"file_ids": [csv]}})
    assert resources(a) == ([csv], [store.id])
    a = client.beta.assistants.update(a.id, tool_resources={"code_interpreter": {"file_ids": [csv, more]}})
    assert resources(a) == ([csv, more], [store.id])
    a = client.beta.assistants.update(a.id, tools=[*both, {"type": "function", "function": {"name": "f"}}], name="n")
    assert resources(a) == ([csv, more], [store.id])
    assert client.beta.assistants.retrieve(a.id).model_dump() == a.model_dump()

    # Naming file_search changes it: [] detaches the store, ids attach one; the code files stay.
    a = client.beta.assistants.update(a.id, tool_resources={"file_search": {"vector_store_ids": []}})
    assert resources(a) == ([csv, more], None)
    a = client.beta.assistants.update(a.id, tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    assert resources(a) == ([csv, more], [store.id])

    # Created with both tools and only code files (with or without an empty file_search), or given file_search
    # later: no store.
    b = client.beta.assistants.create(model="gpt-4o", tools=both,
                                      tool_resources={"code_interpreter": {"file_ids": [csv]}})
    assert resources(b) == ([csv], None)
    c = client.beta.assistants.create(model="gpt-4o", tools=both,
                                      tool_resources={"file_search": {}, "code_interpreter": {"file_ids": [csv]}})
    assert resources(c) == ([csv], None)
    d = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}],
                                      tool_resources={"code_interpreter": {"file_ids": [csv]}})
    d = client.beta.assistants.update(d.id, tools=both)
    assert resources(d) == ([csv], None)

    # No store appeared, and the handbook's holds only the handbook.
    assert [s.id for s in client.vector_stores.list()] == [store.id]
    assert [f.id for f in client.vector_stores.files.list(store.id)] == [handbook]


def test_v1_only_input_is_rejected_in_v2(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o", tools=[{"type": "retrieval"}])  # type: ignore[list-item]
    assert err.value.body["param"] == "tools[0].type"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o", extra_body={"file_ids": []})
    assert err.value.body["code"] == "unknown_parameter" and err.value.body["param"] == "file_ids"


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_value"),
        ({"metadata": {"k" * 65: "v"}}, "metadata", "invalid_value"),
        ({"metadata": {"k": "v" * 513}}, "metadata", "invalid_value"),
        ({"name": "n" * 257}, "name", "string_above_max_length"),
        ({"description": "d" * 513}, "description", "string_above_max_length"),
        ({"instructions": "i" * 256_001}, "instructions", "string_above_max_length"),
        ({"tools": [{"type": "code_interpreter"}] * 129}, "tools", "array_above_max_length"),
        ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
        ({"top_p": -1}, "top_p", "integer_below_min_value"),
        ({"tools": [{"type": "function"}]}, "tools[0]", "invalid_value"),
        ({"tools": [{"type": "browser"}]}, "tools[0].type", "invalid_value"),
    ],
)
def test_limits(client: openai.OpenAI, kwargs: dict[str, object], param: str, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o", **kwargs)  # type: ignore[arg-type]
    assert err.value.status_code == 400
    assert err.value.body["param"] == param and err.value.body["code"] == code
    assert err.value.body["type"] == "invalid_request_error"


def test_limits_at_the_edge_are_accepted(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(
        model="gpt-4o", name="n" * 256, description="d" * 512, instructions="i" * 256_000,
        tools=[{"type": "code_interpreter"}] * 128, metadata={("k" * 60 + f"{i:04}"): "v" * 512 for i in range(16)})
    assert len(a.instructions or "") == 256_000 and len(a.metadata or {}) == 16 and len(a.tools) == 128


def test_pagination(fresh_client: openai.OpenAI) -> None:
    # Created back to back, most share a created_at second: order must come from the database, not the clock.
    ids = [fresh_client.beta.assistants.create(model="gpt-4o", name=str(i)).id for i in range(7)]

    page = fresh_client.beta.assistants.list()
    assert [a.id for a in page.data] == ids[::-1] and page.has_more is False
    assert page.first_id == ids[-1] and page.last_id == ids[0]

    asc = fresh_client.beta.assistants.list(order="asc", limit=3)
    assert [a.id for a in asc.data] == ids[:3] and asc.has_more is True
    assert [a.id for a in fresh_client.beta.assistants.list(order="asc", limit=3, after=ids[2]).data] == ids[3:6]
    assert [a.id for a in fresh_client.beta.assistants.list(order="asc", limit=3, after=ids[5]).data] == ids[6:]
    assert [a.id for a in fresh_client.beta.assistants.list(order="asc", limit=2, before=ids[4]).data] == ids[2:4]
    assert [a.id for a in fresh_client.beta.assistants.list(order="desc", limit=2, before=ids[2]).data] == ids[4:2:-1]
    assert [a.id for a in fresh_client.beta.assistants.list(order="desc", limit=2, after=ids[2]).data] == ids[1::-1]
    window = fresh_client.beta.assistants.list(order="asc", after=ids[1], before=ids[5])
    assert [a.id for a in window.data] == ids[2:5]
    last = fresh_client.beta.assistants.list(order="asc", after=ids[6])
    assert last.data == [] and last.has_more is False

    # The SDK's auto-pagination walks every page exactly once.
    assert [a.id for a in fresh_client.beta.assistants.list(limit=2)] == ids[::-1]
    assert [a.id for a in fresh_client.beta.assistants.list(limit=1, order="asc")] == ids

    for bad in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}):
        with pytest.raises(openai.BadRequestError):
            fresh_client.beta.assistants.list(**bad)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as err:
        fresh_client.beta.assistants.list(after="asst_unknown")
    assert err.value.body["param"] == "after"


def test_other_projects_objects_are_invisible(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="gpt-4o", name="mine")
    for call in (lambda: other_client.beta.assistants.retrieve(a.id),
                 lambda: other_client.beta.assistants.update(a.id, name="theirs"),
                 lambda: other_client.beta.assistants.delete(a.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert a.id not in [x.id for x in other_client.beta.assistants.list()]
    assert client.beta.assistants.retrieve(a.id).name == "mine"
    # Nor may another project's files or vector stores be referenced.
    f = client.files.create(file=("mine.txt", io.BytesIO(b"secret")), purpose="assistants")
    with pytest.raises(openai.BadRequestError):
        other_client.beta.assistants.create(model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": [f.id]}})
