"""Files through the current SDK: upload (streamed), list, retrieve, download, delete."""

import hashlib
import io
import os

import openai
import pytest


def test_multi_mb_round_trip(client: openai.OpenAI) -> None:
    payload = os.urandom(6 * 1024 * 1024 + 123)
    f = client.files.create(file=("blob.bin", io.BytesIO(payload)), purpose="assistants")
    assert f.id.startswith("file-") and f.object == "file" and f.bytes == len(payload)
    assert f.filename == "blob.bin" and f.purpose == "assistants" and f.status == "processed"
    assert client.files.retrieve(f.id).model_dump() == f.model_dump()
    body = client.files.content(f.id).read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(payload).hexdigest()

    deleted = client.files.delete(f.id)
    assert (deleted.id, deleted.deleted) == (f.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)


def test_empty_and_unicode_names(client: openai.OpenAI) -> None:
    f = client.files.create(file=("résumé 2024.txt", io.BytesIO(b"")), purpose="assistants")
    assert f.bytes == 0 and f.filename == "résumé 2024.txt"
    assert client.files.content(f.id).read() == b""


def test_list_and_filter(fresh_client: openai.OpenAI) -> None:
    a = fresh_client.files.create(file=("a.txt", io.BytesIO(b"a")), purpose="assistants")
    b = fresh_client.files.create(file=("b.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")
    assert [f.id for f in fresh_client.files.list()] == [b.id, a.id]
    assert [f.id for f in fresh_client.files.list(purpose="fine-tune")] == [b.id]
    assert [f.id for f in fresh_client.files.list(order="asc", limit=1)] == [a.id, b.id]


def test_deleting_a_file_detaches_it(client: openai.OpenAI) -> None:
    f = client.files.create(file=("x.py", io.BytesIO(b"print(1)")), purpose="assistants")
    a = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}],
                                      tool_resources={"code_interpreter": {"file_ids": [f.id]}})
    client.files.delete(f.id)
    assert client.beta.assistants.retrieve(a.id).tool_resources.code_interpreter is None


def test_bad_uploads(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.txt", io.BytesIO(b"a")), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.body["param"] == "purpose"


def test_other_projects_files_are_invisible(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    f = client.files.create(file=("secret.txt", io.BytesIO(b"s3cret")), purpose="assistants")
    for call in (lambda: other_client.files.retrieve(f.id), lambda: other_client.files.content(f.id),
                 lambda: other_client.files.delete(f.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert f.id not in [x.id for x in other_client.files.list()]
    assert client.files.content(f.id).read() == b"s3cret"
