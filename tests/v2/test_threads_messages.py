"""Threads and messages through the current SDK (assistants=v2)."""

import io

import openai
import pytest


@pytest.fixture(scope="module")
def text_file(client: openai.OpenAI) -> str:
    return client.files.create(file=("notes.txt", io.BytesIO(b"hello")), purpose="assistants").id


def test_thread_lifecycle(client: openai.OpenAI, text_file: str) -> None:
    t = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "I need to solve `3x + 11 = 14`.",
             "attachments": [{"file_id": text_file, "tools": [{"type": "code_interpreter"}]}],
             "metadata": {"n": "1"}},
            {"role": "assistant", "content": "Sure."},
        ],
        tool_resources={"code_interpreter": {"file_ids": [text_file]}},
        metadata={"user": "abc"},
    )
    assert t.id.startswith("thread_") and t.object == "thread" and t.metadata == {"user": "abc"}
    assert t.tool_resources.code_interpreter.file_ids == [text_file]

    msgs = client.beta.threads.messages.list(t.id, order="asc").data
    assert [m.role for m in msgs] == ["user", "assistant"]
    first = msgs[0]
    assert first.id.startswith("msg_") and first.object == "thread.message" and first.thread_id == t.id
    assert first.content[0].type == "text" and first.content[0].text.value == "I need to solve `3x + 11 = 14`."
    assert first.content[0].text.annotations == []
    assert first.attachments[0].file_id == text_file and first.attachments[0].tools[0].type == "code_interpreter"
    assert first.metadata == {"n": "1"} and first.status == "completed"
    assert first.assistant_id is None and first.run_id is None

    assert client.beta.threads.retrieve(t.id).model_dump() == t.model_dump()
    modified = client.beta.threads.update(t.id, metadata={"user": "xyz"})
    assert modified.metadata == {"user": "xyz"} and modified.tool_resources.code_interpreter.file_ids == [text_file]

    deleted = client.beta.threads.delete(t.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (t.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.retrieve(t.id)
    assert err.value.body["message"] == f"No thread found with id '{t.id}'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(msgs[0].id, thread_id=t.id)


def test_thread_tool_resources_change_only_what_they_name(client: openai.OpenAI, text_file: str) -> None:
    """`file_search: {}` names no stores (the thread keeps its own, or the one its attachments made), and code
    files never make one; create-thread-and-run's own tool_resources add to the thread's rather than replace."""
    store = client.vector_stores.create(name="thread store")

    def resources(x: object) -> tuple[list[str] | None, list[str] | None]:
        tr = x.tool_resources  # type: ignore[attr-defined]
        return (tr.code_interpreter.file_ids if tr.code_interpreter else None,
                tr.file_search.vector_store_ids if tr.file_search else None)

    t = client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [store.id]},
                                                   "code_interpreter": {"file_ids": [text_file]}})
    t = client.beta.threads.update(t.id, tool_resources={"file_search": {}, "code_interpreter": {"file_ids": []}})
    assert resources(t) == (None, [store.id])
    t = client.beta.threads.update(t.id, tool_resources={"code_interpreter": {"file_ids": [text_file]}})
    assert resources(t) == ([text_file], [store.id])
    t = client.beta.threads.update(t.id, tool_resources={"file_search": {"vector_store_ids": []}})
    assert resources(t) == ([text_file], None)
    assert client.beta.threads.retrieve(t.id).model_dump() == t.model_dump()

    made = client.beta.threads.create(tool_resources={"file_search": {}, "code_interpreter": {"file_ids": [text_file]}})
    assert resources(made) == ([text_file], None)

    attached = client.beta.threads.create(messages=[{"role": "user", "content": "notes", "attachments": [
        {"file_id": text_file, "tools": [{"type": "file_search"}]}]}])
    [auto] = attached.tool_resources.file_search.vector_store_ids
    attached = client.beta.threads.update(attached.id, tool_resources={
        "file_search": {}, "code_interpreter": {"file_ids": [text_file]}})
    assert resources(attached) == ([text_file], [auto])

    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"},
                                                                     {"type": "file_search"}])
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"tool_resources": {"file_search": {"vector_store_ids": [store.id]}}},
        tool_resources={"code_interpreter": {"file_ids": [text_file]}})
    assert resources(client.beta.threads.retrieve(run.thread_id)) == ([text_file], [store.id])
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"tool_resources": {"file_search": {"vector_store_ids": [store.id]}}},
        tool_resources={"file_search": {}})
    assert resources(client.beta.threads.retrieve(run.thread_id)) == (None, [store.id])


def test_empty_thread(client: openai.OpenAI) -> None:
    t = client.beta.threads.create()
    assert t.metadata == {} and client.beta.threads.messages.list(t.id).data == []


def test_messages(client: openai.OpenAI, text_file: str) -> None:
    t = client.beta.threads.create()
    # Image parts must name image files: the PNG signature, then (here) nothing the test needs.
    image = client.files.create(file=("chart.png", io.BytesIO(b"\x89PNG\r\n\x1a\n fake")), purpose="vision")
    m = client.beta.threads.messages.create(
        t.id, role="user",
        content=[{"type": "text", "text": "What is in this image?"},
                 {"type": "image_file", "image_file": {"file_id": image.id}},
                 {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}],
        attachments=[{"file_id": text_file, "tools": [{"type": "file_search"}]}],
    )
    assert [c.type for c in m.content] == ["text", "image_file", "image_url"]
    assert m.content[1].image_file.file_id == image.id and m.content[2].image_url.detail == "low"
    assert client.beta.threads.messages.retrieve(m.id, thread_id=t.id).model_dump() == m.model_dump()

    updated = client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"} and updated.content == m.content

    ids = [m.id] + [client.beta.threads.messages.create(t.id, role="user", content=str(i)).id for i in range(24)]
    page = client.beta.threads.messages.list(t.id)
    assert len(page.data) == 20 and page.has_more and [x.id for x in page.data] == ids[::-1][:20]
    assert [x.id for x in client.beta.threads.messages.list(t.id)] == ids[::-1]  # auto-pagination
    assert [x.id for x in client.beta.threads.messages.list(t.id, order="asc", after=ids[20])] == ids[21:]

    gone = client.beta.threads.messages.delete(ids[5], thread_id=t.id)
    assert (gone.id, gone.object, gone.deleted) == (ids[5], "thread.message.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(ids[5], thread_id=t.id)
    assert ids[5] not in [x.id for x in client.beta.threads.messages.list(t.id)]


def test_message_validation(client: openai.OpenAI) -> None:
    t = client.beta.threads.create()
    cases = [
        ({"role": "system", "content": "x"}, "role"),
        ({"role": "user", "content": ""}, "content"),
        ({"role": "user", "content": "x" * 256_001}, "content"),
        ({"role": "user", "content": "x", "attachments": [{"file_id": "file-nope", "tools": []}]}, "attachments"),
        ({"role": "user", "content": "x", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ]
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.messages.create(t.id, **kwargs)  # type: ignore[arg-type]
        assert err.value.body["param"] == param, kwargs
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.create(messages=[{"role": "user", "content": "ok"}, {"role": "bot", "content": "x"}])
    assert err.value.body["param"] == "messages[1].role"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create("thread_nope", role="user", content="x")
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.messages.retrieve("msg_nope", thread_id=t.id)
    assert err.value.body["message"] == "No message found with id 'msg_nope'."


def test_other_projects_threads_are_invisible(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    t = client.beta.threads.create(messages=[{"role": "user", "content": "private"}])
    m = client.beta.threads.messages.list(t.id).data[0]
    for call in (lambda: other_client.beta.threads.retrieve(t.id),
                 lambda: other_client.beta.threads.update(t.id, metadata={}),
                 lambda: other_client.beta.threads.delete(t.id),
                 lambda: other_client.beta.threads.messages.list(t.id),
                 lambda: other_client.beta.threads.messages.create(t.id, role="user", content="x"),
                 lambda: other_client.beta.threads.messages.retrieve(m.id, thread_id=t.id),
                 lambda: other_client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={}),
                 lambda: other_client.beta.threads.messages.delete(m.id, thread_id=t.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert [x.id for x in client.beta.threads.messages.list(t.id).data] == [m.id]
