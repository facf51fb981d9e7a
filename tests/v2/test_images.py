"""Images in user messages reach the model: an `image_file` (uploaded for vision) inlined as a data: URL of its
media type, an `image_url` passed through, `detail` kept; a file that is not an image refused at message
creation; an upstream that refuses images fails the run with its reason. The scripted model shows what it got."""

import base64
import io
import struct
import uuid
import zlib

import httpx
import openai
import pytest

from tests.model_server import ScriptedModel


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, red) PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def tag() -> str:
    return f"i{uuid.uuid4().hex[:10]}"


def upload(client: openai.OpenAI, name: str, data: bytes, purpose: str = "vision") -> str:
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose).id  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def assistant(client: openai.OpenAI) -> str:
    return client.beta.assistants.create(model="gpt-4o", instructions="Describe images.").id


def test_images_reach_the_model(client: openai.OpenAI, model: ScriptedModel, assistant: str) -> None:
    word = tag()
    model.script(word, {"text": "A red square and a cat."})
    image = png()
    file_id = upload(client, "square.png", image)
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(thread.id, role="user", content=[
        {"type": "text", "text": f"What do you see? {word}"},
        {"type": "image_file", "image_file": {"file_id": file_id, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}}])
    assert message.content[1].image_file.file_id == file_id  # type: ignore[union-attr]
    assert message.content[1].image_file.detail == "high"  # type: ignore[union-attr]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant, poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    inlined, linked = model.image_parts(word)
    assert inlined == {"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(image).decode(), "detail": "high"}}
    assert linked == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}}
    [request] = model.requests_for(word)
    user = next(m for m in request["messages"] if m["role"] == "user")
    assert user["content"][0] == {"type": "text", "text": f"What do you see? {word}"}


def test_an_image_uploaded_for_assistants_without_detail(client: openai.OpenAI, model: ScriptedModel,
                                                         assistant: str) -> None:
    word = tag()
    image = png(3, 1)
    file_id = upload(client, "no-extension", image, purpose="assistants")  # the bytes say PNG, not the name
    run = client.beta.threads.create_and_run_poll(assistant_id=assistant, thread={"messages": [
        {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": file_id}},
                                     {"type": "text", "text": word}]}]}, poll_interval_ms=50)
    assert run.status == "completed"
    assert model.image_parts(word) == [{"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(image).decode()}}]


def test_files_that_are_not_images_are_refused_at_message_creation(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    notes = upload(client, "notes.png", b"just text, whatever the name says")
    batch = upload(client, "real.png", png(), purpose="batch")
    cases = [(notes, "is not an image"), (batch, "purpose 'batch'"), ("file-nosuchfile", "no file found")]
    for file_id, says in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.messages.create(thread.id, role="user", content=[
                {"type": "text", "text": "look"}, {"type": "image_file", "image_file": {"file_id": file_id}}])
        body = err.value.body
        assert isinstance(body, dict) and body["param"] == "content[1].image_file.file_id", body
        assert says in body["message"], body
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.create(messages=[{"role": "user", "content": [
            {"type": "image_file", "image_file": {"file_id": notes}}]}])
    assert isinstance(err.value.body, dict) and err.value.body["param"] == "messages[0].content[0].image_file.file_id"
    assert client.beta.threads.messages.list(thread.id).data == []


def test_a_bad_detail_is_refused(http: httpx.Client, client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    r = http.post(f"/threads/{thread.id}/messages", json={"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "ultra"}}]})
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("content")


def test_an_upstream_refusing_images_fails_the_run_with_its_reason(client: openai.OpenAI, model: ScriptedModel,
                                                                   assistant: str) -> None:
    word = tag()
    model.script(word, {"error": 400, "message": "image input is not supported by this model"})
    file_id = upload(client, "square.png", png())
    thread = client.beta.threads.create(messages=[{"role": "user", "content": [
        {"type": "text", "text": word}, {"type": "image_file", "image_file": {"file_id": file_id}}]}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant, poll_interval_ms=50)
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "invalid_prompt"
    assert "image input is not supported by this model" in run.last_error.message
    assert len(model.image_parts(word)) == 1  # it did get the image
