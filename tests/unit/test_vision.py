"""Images in user messages, as the prompt carries them to the model (no stack: files and blobs are faked)."""

import base64
from typing import Any

from shared import images
from shared.config import get_settings
from shared.models import Message, Run
from worker import vision
from worker.prompt import build, estimate_tokens

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 40


def run() -> Run:
    return Run(id="run_1", project_id="proj_1", thread_id="t", assistant_id="a", created_at=0, model="m")


def msg(role: str, *parts: dict[str, Any]) -> Message:
    return Message(id="m", project_id="proj_1", thread_id="t", created_at=0, role=role, content=list(parts))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def image_file(file_id: str, detail: str | None = None) -> dict[str, Any]:
    return {"type": "image_file", "image_file": {"file_id": file_id, **({"detail": detail} if detail else {})}}


class Files:
    """A fake of the files table and blob store, counting what is read."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.reads: list[str] = []
        self.queries: list[tuple[str, list[str]]] = []

    def load(self, project_id: str, ids: list[str]) -> dict[str, vision.FileRef]:
        self.queries.append((project_id, ids))
        return {i: vision.FileRef(f"key/{i}", len(self.blobs[i])) for i in ids if i in self.blobs}

    def read(self, key: str, limit: int) -> bytes | None:
        self.reads.append(key)
        data = self.blobs[key.removeprefix("key/")]
        return None if len(data) > limit else data


def test_media_types_come_from_the_bytes() -> None:
    assert images.sniff(PNG) == "image/png" and images.sniff(JPEG) == "image/jpeg"
    assert images.sniff(b"GIF89a....") == "image/gif" and images.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert images.sniff(b"%PDF-1.7") is None and images.sniff(b"hello world") is None and images.sniff(b"") is None


def test_user_images_become_data_urls_with_their_detail() -> None:
    files = Files({"file-a": PNG, "file-b": JPEG})
    history = [msg("user", text("What is in these?"), image_file("file-a", "low"), image_file("file-b"),
                   {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}})]
    p = build(run(), history, [], window=8192, reserve=0,
              images=lambda ms, project: vision.inline(ms, project, load=files.load, read=files.read))
    [user] = p.messages
    assert user["content"][0] == {"type": "text", "text": "What is in these?"}
    assert user["content"][1] == {"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(PNG).decode(), "detail": "low"}}
    assert user["content"][2] == {"type": "image_url", "image_url": {
        "url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()}}
    assert user["content"][3] == {"type": "image_url",
                                  "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}
    assert files.queries == [("proj_1", ["file-a", "file-b"])]  # one query, scoped to the run's project


def test_assistant_images_stay_text() -> None:
    p = build(run(), [msg("assistant", image_file("file-fig"), text("Here is the plot."))], [], window=8192,
              reserve=0, images=lambda ms, _: ms)
    assert p.messages == [{"role": "assistant", "content": "[image file file-fig]\nHere is the plot."}]


def test_images_count_as_tokens_not_bytes_and_are_read_only_if_kept() -> None:
    assert estimate_tokens({"content": [{"type": "image_file", "image_file": {"file_id": "f", "detail": "low"}}]}) \
        == 4 + 85
    huge = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 1_000_000}}
    assert estimate_tokens({"content": [huge]}) == 4 + 765
    files = Files({"file-old": PNG, "file-new": JPEG})
    history = [msg("user", image_file("file-old"), text("x" * 8000)), msg("user", image_file("file-new"))]
    p = build(run(), history, [], window=1500, reserve=0,
              images=lambda ms, project: vision.inline(ms, project, load=files.load, read=files.read))
    assert p.dropped == 1 and files.reads == ["key/file-new"]  # the dropped message's image is never read


def test_what_cannot_be_shown_becomes_a_note() -> None:
    files = Files({"file-text": b"just some text", "file-big": PNG + b"\x00" * 100})
    messages: list[dict[str, Any]] = [{"role": "user", "content": [
        {"type": "image_file", "image_file": {"file_id": "file-gone"}},
        {"type": "image_file", "image_file": {"file_id": "file-text"}},
        {"type": "image_file", "image_file": {"file_id": "file-big"}}]}]
    original = [dict(m) for m in messages]
    settings = get_settings()
    limit = settings.image_max_bytes
    settings.image_max_bytes = 100
    try:
        out = vision.inline(messages, "proj_1", load=files.load, read=files.read)
    finally:
        settings.image_max_bytes = limit
    assert [p["text"] for p in out[0]["content"]] == [
        "[image file-gone is no longer available]", "[image file-text could not be read as an image]",
        "[image file-big is too large to show]"]
    assert messages == original  # the input is left as it was
    assert files.reads == ["key/file-text"]  # the oversized one is not read at all


def test_a_prompt_without_images_reads_nothing() -> None:
    def no_io(*_: Any) -> Any:
        raise AssertionError("no I/O expected")

    ms = [{"role": "user", "content": "hello"}]
    assert vision.inline(ms, "p", load=no_io, read=no_io) is ms
