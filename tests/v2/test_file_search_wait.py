"""Runs wait for their files to be indexed: a run created right after its file was attached (to a message, or
to the assistant's inline store) does not call the model until the file is searchable, and the model's search
then finds what the file says. The files are big enough that the local embedder needs seconds for them, so
without the wait the search would come back empty ("No results found"). Streams show the run `in_progress`
meanwhile.

The session stack's bound is raised (tests/conftest.py) so a loaded machine's slow embedding does not end the
wait early; the bound itself is tested in test_file_search_wait_bound.py."""

import io
import json
import time
import uuid
from dataclasses import dataclass, field

import openai
import pytest

from tests import corpus
from tests.model_server import ScriptedModel

KB = 48  # ~11k tokens: a few seconds of the local embedder on an idle 2-core machine, minutes under load
FACT = "The Quillfeather archive vault opens only with the brass key numbered 7713."
QUERY = "which key opens the Quillfeather archive vault"
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}


def search_call(query: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"query": query})}]}


def upload(client: openai.OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id


@dataclass
class Observed:
    """What the test saw while the run went on: (run status, file status, model calls so far) over time."""

    run: object = None
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    indexed_after: float = 0.0  # seconds from the run's creation until the file was seen indexed

    def model_calls_while_indexing(self) -> list[tuple[str, str, int]]:
        return [s for s in self.seen if s[1] == "in_progress" and s[2] > 0]


def follow(client: openai.OpenAI, model: ScriptedModel, word: str, thread_id: str, run_id: str, store: str,
           file_id: str) -> Observed:
    """Poll the run and its file until the run ends. The model's calls are counted before the file's status is
    read, so a file seen `in_progress` was in progress when they were counted: any call then was too early."""
    out, start = Observed(), time.monotonic()
    deadline = start + 500
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        calls = len(model.requests_for(word))
        status = client.vector_stores.files.retrieve(file_id, vector_store_id=store).status
        out.seen.append((run.status, status, calls))
        if status != "in_progress" and not out.indexed_after:
            out.indexed_after = time.monotonic() - start
        if run.status in TERMINAL:
            out.run = run
            return out
        assert time.monotonic() < deadline, f"run still {run.status}, file {status}"
        time.sleep(0.2)


def assert_searched_the_file(model: ScriptedModel, word: str, watched: Observed) -> None:
    run = watched.run
    assert run.status == "completed", run.last_error  # type: ignore[attr-defined]
    print(f"\nindexed {watched.indexed_after:.1f} s after the run was created")
    assert watched.seen[0][1] == "in_progress", "the file was indexed before the run: this test proves nothing"
    assert ("in_progress", "in_progress", 0) in watched.seen, "the run was not seen in_progress while it waited"
    assert watched.model_calls_while_indexing() == [], "the model was called before the file was indexed"
    told = model.requests_for(word)[1]["messages"][-1]
    assert told["role"] == "tool" and FACT in told["content"], told["content"][:300]


@pytest.mark.timeout(600)
def test_a_run_waits_for_its_message_attachment(client: openai.OpenAI, model: ScriptedModel) -> None:
    """The thread's vector store (where attachments go), as OpenAI's runs waited for it."""
    word = f"wait{uuid.uuid4().hex[:10]}"
    doc = upload(client, "archive.txt", corpus.document(KB, FACT, seed=1))
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": f"Which key opens the vault? {word}",
        "attachments": [{"file_id": doc, "tools": [{"type": "file_search"}]}]}])
    [store] = thread.tool_resources.file_search.vector_store_ids
    model.script(word, search_call(QUERY), {"text": "The brass key numbered 7713{cite:0}."})
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    watched = follow(client, model, word, thread.id, run.id, store, doc)
    assert_searched_the_file(model, word, watched)
    [note] = client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text.annotations
    assert note.file_citation.file_id == doc


@pytest.mark.timeout(600)
def test_a_run_waits_for_its_assistants_inline_store(client: openai.OpenAI, model: ScriptedModel) -> None:
    """The assistant's store too (OpenAI did not wait for it)."""
    word = f"wait{uuid.uuid4().hex[:10]}"
    doc = upload(client, "archive.md", corpus.document(KB, FACT, seed=2))
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [doc]}]}})
    [store] = assistant.tool_resources.file_search.vector_store_ids
    model.script(word, search_call(QUERY), {"text": "The brass key numbered 7713{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Which key? {word}"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    watched = follow(client, model, word, thread.id, run.id, store, doc)
    assert_searched_the_file(model, word, watched)


@pytest.mark.timeout(600)
def test_a_waiting_run_streams_in_progress_then_the_answer(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"wait{uuid.uuid4().hex[:10]}"
    doc = upload(client, "archive.txt", corpus.document(KB, FACT, seed=3))
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": f"Which key opens the vault? {word}",
        "attachments": [{"file_id": doc, "tools": [{"type": "file_search"}]}]}])
    [store] = thread.tool_resources.file_search.vector_store_ids
    model.script(word, search_call(QUERY), {"text": "The brass key numbered 7713{cite:0}."})
    names: list[str] = []
    file_when_in_progress = ""
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            names.append(event.event)
            if event.event == "thread.run.in_progress":
                # Told at once, while the file is still being indexed (and the model not yet asked).
                assert model.requests_for(word) == []
                file_when_in_progress = client.vector_stores.files.retrieve(doc, vector_store_id=store).status
        final = stream.get_final_messages()
    assert names[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"], names
    assert file_when_in_progress == "in_progress", "the file was indexed before the run began: proves nothing"
    assert names[-1] == "thread.run.completed" and "thread.message.completed" in names, names
    text = final[-1].content[0].text
    assert "7713" in text.value and text.annotations[0].file_citation.file_id == doc
    assert FACT in model.requests_for(word)[1]["messages"][-1]["content"]
