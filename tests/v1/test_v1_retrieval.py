"""v1 `retrieval` through openai==1.20.0: an assistant's file_ids and a message's file_ids are indexed, the
model's search results come back cited, with the v1 annotation (`file_citation.quote`) and step type."""

import json
import time
import uuid

import httpx
import openai
import pytest

from tests import corpus
from tests.model_server import ScriptedModel
from tests.stack import Stack

MANUAL = ("Vortex blender manual. To clean the blades, fill the jar with warm water and a drop of soap, then run "
          "the pulse setting for ten seconds.\n\nThe warranty lasts three years from the date of purchase.\n")


def wait_indexed(stack: Stack, store: str, file_id: str) -> None:
    """The v1 SDK has no vector store API; the v2 endpoint shows when the file is searchable."""
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    deadline = time.monotonic() + 60
    while True:
        f = httpx.get(f"{stack.base_url}/vector_stores/{store}/files/{file_id}", headers=headers).json()
        if f["status"] != "in_progress":
            assert f["status"] == "completed", f
            return
        assert time.monotonic() < deadline
        time.sleep(0.1)


def v2_resources(stack: Stack, path: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    return dict(httpx.get(f"{stack.base_url}/{path}", headers=headers).json()["tool_resources"])


def test_v1_retrieval_answers_with_citations(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"v{uuid.uuid4().hex[:10]}"
    manual = client.files.create(file=("manual.txt", MANUAL.encode()), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4-1106-preview", tools=[{"type": "retrieval"}],
                                              file_ids=[manual.id])
    [store] = v2_resources(stack, f"assistants/{assistant.id}")["file_search"]["vector_store_ids"]  # type: ignore[index]
    wait_indexed(stack, store, manual.id)
    model.script(word, {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"query": "warranty"})}]},
                 {"text": "Three years{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"How long is the warranty? {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    text = client.beta.threads.messages.list(thread.id).data[0].content[0].text
    [note] = text.annotations
    assert note.type == "file_citation" and note.file_citation.file_id == manual.id
    assert "three years" in note.file_citation.quote and note.file_citation.quote in MANUAL
    assert text.value[note.start_index:note.end_index] == note.text
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    [call] = steps[0].step_details.tool_calls
    assert call.type == "retrieval" and call.retrieval == {}


def test_v1_message_files_are_searchable(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"v{uuid.uuid4().hex[:10]}"
    notes = client.files.create(file=("notes.md", b"The spare key is under the blue flowerpot.\n"),
                                purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4", tools=[{"type": "retrieval"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Where is the key? {word}",
                                                   "file_ids": [notes.id]}])
    [store] = v2_resources(stack, f"threads/{thread.id}")["file_search"]["vector_store_ids"]  # type: ignore[index]
    wait_indexed(stack, store, notes.id)
    model.script(word, {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"query": "spare key"})}]},
                 {"text": "Under the blue flowerpot{cite:0}."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "completed", run.last_error
    [note] = client.beta.threads.messages.list(thread.id).data[0].content[0].text.annotations
    assert note.file_citation.file_id == notes.id and "flowerpot" in note.file_citation.quote


@pytest.mark.timeout(600)
def test_v1_run_waits_for_the_assistants_files(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    """The seed's own flow, at once: upload a file, create an assistant with it (`file_ids`, `retrieval`), create
    a thread, run. The file takes the local embedder seconds (minutes on a loaded machine); the run waits for it
    rather than searching an empty index, and the model's search finds what the file says."""
    word = f"v{uuid.uuid4().hex[:10]}"
    fact = "The Quillfeather archive vault opens only with the brass key numbered 7713."
    doc = client.files.create(file=("archive.txt", corpus.document(48, fact, seed=11)), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4-1106-preview", tools=[{"type": "retrieval"}],
                                              file_ids=[doc.id])
    model.script(word, {"tool_calls": [{"name": "file_search", "arguments": json.dumps(
        {"query": "which key opens the Quillfeather archive vault"})}]}, {"text": "The brass key 7713{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Which key? {word}"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    [store] = v2_resources(stack, f"assistants/{assistant.id}")["file_search"]["vector_store_ids"]  # type: ignore[index]
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    seen: list[tuple[str, str, int]] = []
    deadline = time.monotonic() + 500
    while run.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, seen[-1:]
        time.sleep(0.2)
        run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        calls = len(model.requests_for(word))  # counted first: a file seen in progress after it was then too
        status = httpx.get(f"{stack.base_url}/vector_stores/{store}/files/{doc.id}", headers=headers).json()["status"]
        seen.append((run.status, status, calls))
    assert run.status == "completed", run.last_error
    assert seen[0][1] == "in_progress", "the file was indexed before the run: this test proves nothing"
    assert ("in_progress", "in_progress", 0) in seen, "the run was not seen in_progress while it waited"
    assert [s for s in seen if s[1] == "in_progress" and s[2]] == [], "the model was called before indexing ended"
    assert fact in model.requests_for(word)[1]["messages"][-1]["content"]
    [note] = client.beta.threads.messages.list(thread.id).data[0].content[0].text.annotations
    assert note.file_citation.file_id == doc.id and "7713" in note.file_citation.quote
