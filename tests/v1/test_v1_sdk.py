"""The v1 API shape through openai==1.20.0: file_ids, `retrieval`, assistant files and message files —
and the same objects read back in the v2 shape."""

import hashlib
import io
import os
import uuid

import httpx
import openai
import pytest

from tests.stack import Stack


def upload(client: openai.OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id


def v2_view(stack: Stack, path: str) -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    r = httpx.get(stack.base_url + path, headers=headers)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def test_assistant_with_files(client: openai.OpenAI, stack: Stack) -> None:
    f1, f2 = upload(client, "a.md", b"# A"), upload(client, "b.py", b"print(2)")
    a = client.beta.assistants.create(model="gpt-4-1106-preview", name="Math Tutor", description="helps",
                                      instructions="You are a personal math tutor.",
                                      tools=[{"type": "retrieval"}, {"type": "code_interpreter"}],
                                      file_ids=[f1, f2], metadata={"k": "v"})
    assert a.id.startswith("asst_") and a.file_ids == [f1, f2]
    assert [t.type for t in a.tools] == ["retrieval", "code_interpreter"]
    assert client.beta.assistants.retrieve(a.id).model_dump() == a.model_dump()

    # The same assistant in the v2 shape: files under both tools, retrieval as file_search over a vector store.
    v2 = v2_view(stack, f"/assistants/{a.id}")
    assert [t["type"] for t in v2["tools"]] == ["file_search", "code_interpreter"]
    assert v2["tool_resources"]["code_interpreter"]["file_ids"] == [f1, f2]
    [vs] = v2["tool_resources"]["file_search"]["vector_store_ids"]
    assert vs.startswith("vs_") and "file_ids" not in v2

    updated = client.beta.assistants.update(a.id, file_ids=[f2], name="Tutor")
    assert updated.file_ids == [f2] and updated.name == "Tutor" and updated.instructions == a.instructions
    assert v2_view(stack, f"/assistants/{a.id}")["tool_resources"]["file_search"]["vector_store_ids"] == [vs]

    deleted = client.beta.assistants.delete(a.id)
    assert deleted.deleted and deleted.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(a.id)


def test_v1_files_stay_mirrored_and_v2_updates_leave_the_store_alone(stack: Stack) -> None:
    """v1 requests (file_ids, assistant files) keep mirroring an assistant's files into its store; a v2 update
    naming only other resources leaves store and mirroring as they are, and one changing the code_interpreter
    files leaves what the store holds (file_search's, which it did not name) and ends the mirroring."""
    key = stack.new_key(f"mirror-{uuid.uuid4().hex[:8]}")  # a project of its own: its store list is exact
    client = openai.OpenAI(base_url=stack.base_url, api_key=key)
    v2 = httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}",
                                                        "OpenAI-Beta": "assistants=v2"})
    f1, f2, f3 = (upload(client, f"m{i}.md", f"# note {i}".encode()) for i in range(3))
    a = client.beta.assistants.create(model="gpt-4", tools=[{"type": "retrieval"}, {"type": "code_interpreter"}],
                                      file_ids=[f1])
    [vs] = v2.get(f"/assistants/{a.id}").json()["tool_resources"]["file_search"]["vector_store_ids"]

    def in_store() -> set[str]:
        return {f["id"] for f in v2.get(f"/vector_stores/{vs}/files").json()["data"]}

    def v2_update(body: dict[str, object]) -> dict[str, object]:
        r = v2.post(f"/assistants/{a.id}", json=body)
        r.raise_for_status()
        return dict(r.json()["tool_resources"])

    assert in_store() == {f1}
    client.beta.assistants.files.create(a.id, file_id=f2)
    assert in_store() == {f1, f2}
    client.beta.assistants.update(a.id, file_ids=[f2])
    assert in_store() == {f2}

    assert v2_update({"tool_resources": {"file_search": {}}, "name": "renamed"}) == {
        "code_interpreter": {"file_ids": [f2]}, "file_search": {"vector_store_ids": [vs]}}
    client.beta.assistants.update(a.id, file_ids=[f1, f2])
    assert in_store() == {f1, f2}  # still mirrored

    resources = v2_update({"tool_resources": {"code_interpreter": {"file_ids": [f1, f2, f3]}}})
    assert resources["file_search"] == {"vector_store_ids": [vs]}
    assert set(resources["code_interpreter"]["file_ids"]) == {f1, f2, f3}  # type: ignore[index]
    assert in_store() == {f1, f2}
    assert set(client.beta.assistants.retrieve(a.id).file_ids) == {f1, f2, f3}
    assert [s["id"] for s in v2.get("/vector_stores").json()["data"]] == [vs]  # and no other store was made


def test_retrieval_only_assistant_in_v2(client: openai.OpenAI, stack: Stack) -> None:
    f = upload(client, "doc.txt", b"text")
    a = client.beta.assistants.create(model="gpt-4", tools=[{"type": "retrieval"}], file_ids=[f])
    v2 = v2_view(stack, f"/assistants/{a.id}")
    assert "code_interpreter" not in v2["tool_resources"]
    assert len(v2["tool_resources"]["file_search"]["vector_store_ids"]) == 1


def test_assistant_files_sub_resource(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="gpt-4", tools=[{"type": "retrieval"}])
    ids = [upload(client, f"f{i}.txt", str(i).encode()) for i in range(5)]
    for fid in ids:
        af = client.beta.assistants.files.create(a.id, file_id=fid)
        assert (af.id, af.object, af.assistant_id) == (fid, "assistant.file", a.id)
    assert client.beta.assistants.files.create(a.id, file_id=ids[0]).id == ids[0]  # idempotent
    assert [f.id for f in client.beta.assistants.files.list(a.id)] == ids[::-1]
    page = client.beta.assistants.files.list(a.id, order="asc", limit=2, after=ids[1])
    assert [f.id for f in page.data] == ids[2:4] and page.has_more
    assert [f.id for f in client.beta.assistants.files.list(a.id, limit=2)] == ids[::-1]  # auto-paging
    assert client.beta.assistants.files.retrieve(ids[3], assistant_id=a.id).assistant_id == a.id
    assert client.beta.assistants.retrieve(a.id).file_ids == ids

    gone = client.beta.assistants.files.delete(ids[3], assistant_id=a.id)
    assert (gone.id, gone.object, gone.deleted) == (ids[3], "assistant.file.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.retrieve(ids[3], assistant_id=a.id)
    assert ids[3] not in client.beta.assistants.retrieve(a.id).file_ids
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.create(a.id, file_id="file-nope")


def test_file_limits(client: openai.OpenAI) -> None:
    many = [upload(client, f"m{i}.txt", b"x") for i in range(21)]
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4", file_ids=many)
    assert err.value.body["param"] == "file_ids"
    a = client.beta.assistants.create(model="gpt-4", file_ids=many[:20])
    with pytest.raises(openai.BadRequestError):
        client.beta.assistants.files.create(a.id, file_id=many[20])
    t = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(t.id, role="user", content="x", file_ids=many[:11])
    assert err.value.body["param"] == "file_ids"


def test_threads_messages_and_message_files(client: openai.OpenAI, stack: Stack) -> None:
    f = upload(client, "data.csv", b"a,b\n1,2\n")
    t = client.beta.threads.create(messages=[{"role": "user", "content": "Analyse this", "file_ids": [f]}],
                                   metadata={"user": "u1"})
    assert t.id.startswith("thread_") and t.metadata == {"user": "u1"}
    [m] = client.beta.threads.messages.list(t.id).data
    assert m.file_ids == [f] and m.content[0].text.value == "Analyse this"

    [mf] = client.beta.threads.messages.files.list(m.id, thread_id=t.id).data
    assert (mf.id, mf.object, mf.message_id) == (f, "thread.message.file", m.id)
    assert client.beta.threads.messages.files.retrieve(f, thread_id=t.id, message_id=m.id).id == f
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.files.retrieve("file-other", thread_id=t.id, message_id=m.id)

    # v2 sees the files as attachments usable by both tools.
    v2 = v2_view(stack, f"/threads/{t.id}/messages/{m.id}")
    assert v2["attachments"] == [{"file_id": f, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}]

    m2 = client.beta.threads.messages.create(t.id, role="user", content="And this?")
    assert m2.file_ids == []
    assert client.beta.threads.messages.update(m2.id, thread_id=t.id, metadata={"a": "b"}).metadata == {"a": "b"}
    assert [x.id for x in client.beta.threads.messages.list(t.id, order="asc")] == [m.id, m2.id]
    assert client.beta.threads.update(t.id, metadata={"user": "u2"}).metadata == {"user": "u2"}
    assert client.beta.threads.delete(t.id).deleted


def test_v2_only_input_is_rejected_in_v1(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4", extra_body={"tool_resources": {}})
    assert err.value.body["param"] == "tool_resources"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4", tools=[{"type": "file_search"}])  # type: ignore[list-item]
    assert err.value.body["param"] == "tools[0].type"


def test_file_round_trip(client: openai.OpenAI) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    f = client.files.create(file=("blob.bin", io.BytesIO(payload)), purpose="assistants")
    assert f.bytes == len(payload)
    assert hashlib.sha256(client.files.content(f.id).read()).digest() == hashlib.sha256(payload).digest()
    assert f.id in [x.id for x in client.files.list(purpose="assistants")]
    assert client.files.delete(f.id).deleted


def test_other_project_sees_nothing(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    f = upload(client, "p.txt", b"p")
    a = client.beta.assistants.create(model="gpt-4", file_ids=[f])
    t = client.beta.threads.create(messages=[{"role": "user", "content": "x", "file_ids": [f]}])
    m = client.beta.threads.messages.list(t.id).data[0]
    for call in (lambda: other_client.beta.assistants.retrieve(a.id),
                 lambda: other_client.beta.assistants.files.list(a.id),
                 lambda: other_client.beta.assistants.files.retrieve(f, assistant_id=a.id),
                 lambda: other_client.beta.assistants.files.delete(f, assistant_id=a.id),
                 lambda: other_client.beta.threads.retrieve(t.id),
                 lambda: other_client.beta.threads.messages.files.list(m.id, thread_id=t.id),
                 lambda: other_client.files.retrieve(f)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert client.beta.assistants.retrieve(a.id).file_ids == [f]
