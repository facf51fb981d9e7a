"""file_search end to end: vector stores API, real ingestion (extract, chunk, embed with the local model, index
in pgvector), hybrid search in runs, citations. Only the model is scripted."""

import io
import json
import os
import signal
import time
import uuid

import openai
import pytest

from tests.model_server import ScriptedModel
from tests.stack import Stack

REACTOR = ("# Zorblax station handbook\n\nThe Zorblax reactor is cooled by liquid helium-3 circulating through "
           "the inner mantle. Coolant pressure must stay between 40 and 45 bar.\n\n"
           "Shift changes happen at 06:00 and 18:00 station time.\n")
GARDEN = ("Greenhouse notes. Tomatoes on deck seven need watering twice a day; basil grows best under the blue "
          "lamps. The hydroponic pumps are serviced every Tuesday by the botany crew.\n")


def search_call(query: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"query": query})}]}


def upload(client: openai.OpenAI, name: str, data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return client.files.create(file=(name, io.BytesIO(raw)), purpose="assistants").id


def test_vector_store_lifecycle(client: openai.OpenAI) -> None:
    a, b = upload(client, "reactor.md", REACTOR), upload(client, "garden.txt", GARDEN)
    vs = client.vector_stores.create(name="handbook", file_ids=[a], metadata={"team": "ops"},
                                     expires_after={"anchor": "last_active_at", "days": 3})
    assert vs.object == "vector_store" and vs.name == "handbook" and vs.metadata == {"team": "ops"}
    assert vs.expires_after is not None and vs.expires_after.days == 3
    assert vs.expires_at == vs.last_active_at + 3 * 86400
    f = client.vector_stores.files.create_and_poll(file_id=b, vector_store_id=vs.id, poll_interval_ms=100)
    assert f.status == "completed" and f.last_error is None and f.usage_bytes > 0, f
    assert f.chunking_strategy.type == "static" and f.chunking_strategy.static.max_chunk_size_tokens == 800
    first = client.vector_stores.files.poll(a, vector_store_id=vs.id, poll_interval_ms=100)
    assert first.status == "completed"
    vs = client.vector_stores.retrieve(vs.id)
    assert vs.status == "completed" and vs.file_counts.completed == 2 and vs.file_counts.total == 2
    assert vs.usage_bytes >= f.usage_bytes + first.usage_bytes
    listed = client.vector_stores.files.list(vs.id, order="asc")
    assert [x.id for x in listed.data] == [a, b]
    assert [x.id for x in client.vector_stores.files.list(vs.id, filter="failed").data] == []
    vs = client.vector_stores.update(vs.id, name="renamed", expires_after=None)
    assert vs.name == "renamed" and vs.expires_at is None
    deleted = client.vector_stores.files.delete(b, vector_store_id=vs.id)
    assert deleted.deleted and client.vector_stores.retrieve(vs.id).file_counts.total == 1
    assert client.files.retrieve(b).id == b  # detaching keeps the File
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(b, vector_store_id=vs.id)
    assert client.vector_stores.delete(vs.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)


def test_file_batches_upload_and_poll(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vs.id, files=[("one.md", io.BytesIO(REACTOR.encode())), ("two.txt", io.BytesIO(GARDEN.encode())),
                      ("three.py", io.BytesIO(b"def answer():\n    return 42\n"))],
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}},
        poll_interval_ms=100)
    assert batch.object == "vector_store.files_batch" and batch.status == "completed", batch
    assert batch.file_counts.completed == 3 and batch.file_counts.total == 3
    files = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id).data
    assert len(files) == 3 and {f.chunking_strategy.static.max_chunk_size_tokens for f in files} == {200}
    again = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=vs.id)
    assert again.status == "completed"
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=vs.id)
    assert cancelled.file_counts.completed == 3  # nothing left to cancel


def test_unreadable_files_fail_with_a_reason(client: openai.OpenAI) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    locked = io.BytesIO()
    writer.write(locked)
    ids = {"binary.exe": upload(client, "binary.exe", b"MZ\x90\x00" * 100),
           "broken.pdf": upload(client, "broken.pdf", b"%PDF-1.7\nthis is not really a pdf"),
           "locked.pdf": upload(client, "locked.pdf", locked.getvalue()),
           "nul.txt": upload(client, "nul.txt", b"text\x00with\x00nul bytes"),
           "good.md": upload(client, "good.md", REACTOR)}
    vs = client.vector_stores.create(name="mixed")
    batch = client.vector_stores.file_batches.create_and_poll(vs.id, file_ids=list(ids.values()),
                                                              poll_interval_ms=100)
    by_id = {f.id: f for f in client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id).data}
    codes = {name: (by_id[fid].status, by_id[fid].last_error.code if by_id[fid].last_error else None)
             for name, fid in ids.items()}
    assert codes == {"binary.exe": ("failed", "unsupported_file"), "broken.pdf": ("failed", "invalid_file"),
                     "locked.pdf": ("failed", "invalid_file"), "nul.txt": ("failed", "invalid_file"),
                     "good.md": ("completed", None)}
    assert "encrypted" in by_id[ids["locked.pdf"]].last_error.message
    assert batch.file_counts.failed == 4 and batch.file_counts.completed == 1


def test_office_and_pdf_documents_are_read(client: openai.OpenAI, tmp_path: object) -> None:
    import docx
    import pptx
    from matplotlib.figure import Figure

    d = docx.Document()
    d.add_paragraph("The quarterly offsite is in Lisbon on the ninth of May.")
    word = io.BytesIO()
    d.save(word)
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Roadmap"
    slide.placeholders[1].text = "Ship the quantum toaster by autumn."
    slides = io.BytesIO()
    deck.save(slides)
    fig = Figure()
    fig.text(0.1, 0.5, "The vault code is seven seven three.")
    pdf = io.BytesIO()
    fig.savefig(pdf, format="pdf")
    vs = client.vector_stores.create(name="docs")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vs.id, files=[("offsite.docx", word.getvalue()), ("roadmap.pptx", slides.getvalue()),
                      ("vault.pdf", pdf.getvalue())], poll_interval_ms=100)
    files = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id).data
    assert [(f.status, f.last_error) for f in files] == [("completed", None)] * 3


def test_answer_cites_the_file_it_came_from(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"fs{uuid.uuid4().hex[:10]}"
    reactor, garden = upload(client, "reactor.md", REACTOR), upload(client, "garden.txt", GARDEN)
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [reactor, garden]}]}})
    [store] = assistant.tool_resources.file_search.vector_store_ids
    client.vector_stores.files.poll(reactor, vector_store_id=store, poll_interval_ms=100)
    client.vector_stores.files.poll(garden, vector_store_id=store, poll_interval_ms=100)
    model.script(word, search_call("what keeps the reactor cold"),
                 {"text": "It is cooled by liquid helium-3{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"How is the reactor cooled? {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    [message] = [m for m in client.beta.threads.messages.list(thread.id).data if m.role == "assistant"]
    text = message.content[0].text
    [annotation] = text.annotations
    assert annotation.type == "file_citation" and annotation.file_citation.file_id == reactor
    assert text.value[annotation.start_index:annotation.end_index] == annotation.text
    assert annotation.text.startswith("【") and "reactor.md" in annotation.text
    quote = annotation.model_dump()["file_citation"].get("quote")
    assert (quote is not None and "helium-3" in quote and quote in REACTOR.replace("\n\n", "\n")) or quote in REACTOR
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    [call] = steps[0].step_details.tool_calls
    assert call.type == "file_search"
    results = call.model_dump()["file_search"]["results"]
    assert results[0]["file_id"] == reactor and results[0]["file_name"] == "reactor.md"
    assert "_sources" not in json.dumps(call.model_dump())  # the engine's bookkeeping stays private
    told = model.requests_for(word)[1]["messages"][-1]
    assert told["role"] == "tool" and "helium-3" in told["content"].split("【", 2)[1]  # the best excerpt first


def test_code_files_added_later_leave_the_handbook_searchable(client: openai.OpenAI, model: ScriptedModel) -> None:
    """The issue's case, end to end: an assistant searching its handbook is given a CSV for code_interpreter (as
    a framework sends it, with an empty file_search beside it); its searches still read the handbook, not the
    CSV, and its code sees the CSV."""
    word = f"fs{uuid.uuid4().hex[:10]}"
    reactor = upload(client, "reactor.md", REACTOR)
    csv = upload(client, "pressures.csv", "reading,bar\ncoolant,99\n")
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}, {"type": "code_interpreter"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [reactor]}]}})
    [store] = assistant.tool_resources.file_search.vector_store_ids
    assistant = client.beta.assistants.update(assistant.id, tool_resources={
        "file_search": {}, "code_interpreter": {"file_ids": [csv]}})
    assert assistant.tool_resources.file_search.vector_store_ids == [store]
    assert client.vector_stores.files.poll(reactor, vector_store_id=store, poll_interval_ms=100).status == "completed"
    listing = "import os\nprint(sorted(os.listdir('/mnt/data')))"
    model.script(word, {"tool_calls": [  # the search last: {cite:N} reads the last tool output
        {"name": "code_interpreter", "arguments": json.dumps({"code": listing})},
        {"name": "file_search", "arguments": json.dumps({"query": "coolant pressure"})},
    ]}, {"text": "Between 40 and 45 bar{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Coolant pressure? {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    code, search = steps[0].step_details.tool_calls
    assert {r["file_id"] for r in search.model_dump()["file_search"]["results"]} == {reactor}
    assert code.code_interpreter.outputs[0].logs == "['pressures.csv']\n"
    [message] = [m for m in client.beta.threads.messages.list(thread.id).data if m.role == "assistant"]
    assert [a.file_citation.file_id for a in message.content[0].text.annotations] == [reactor]


def test_attachments_make_a_thread_store_and_deleting_a_file_removes_it(client: openai.OpenAI,
                                                                        model: ScriptedModel) -> None:
    word = f"fs{uuid.uuid4().hex[:10]}"
    notes = upload(client, "notes.md", "The launch password is marmalade-42. Keep it secret.\n")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": f"What is the launch password? {word}",
        "attachments": [{"file_id": notes, "tools": [{"type": "file_search"}]}]}])
    [store] = thread.tool_resources.file_search.vector_store_ids
    vs = client.vector_stores.retrieve(store)
    assert vs.expires_after is not None and vs.expires_after.days == 7
    client.vector_stores.files.poll(notes, vector_store_id=store, poll_interval_ms=100)
    model.script(word, search_call("launch password"), {"text": "It is marmalade-42{cite:0}."},
                 search_call("launch password"), {"text": "I could not find it."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text
    assert reply.annotations[0].file_citation.file_id == notes
    assert "marmalade-42" in model.requests_for(word)[1]["messages"][-1]["content"]

    client.files.delete(notes)  # "Detach a file … to remove it from the retrieval index" — or delete it
    client.beta.threads.messages.create(thread.id, role="user", content=f"Again? {word}")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    assert model.requests_for(word)[-1]["messages"][-1]["content"] == "No results found in the files."


def test_search_never_crosses_projects(client: openai.OpenAI, other_client: openai.OpenAI,
                                       model: ScriptedModel) -> None:
    secret = upload(client, "secret.md", "The treasure is buried under the old oak tree in Zorblax park.\n")
    vs = client.vector_stores.create(file_ids=[secret])
    client.vector_stores.files.poll(secret, vector_store_id=vs.id, poll_interval_ms=100)
    with pytest.raises(openai.BadRequestError):
        other_client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                            tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.retrieve(vs.id)


@pytest.mark.timeout(600)  # the local model under a loaded machine
def test_ingest_worker_killed_midway_ends_with_exactly_the_right_chunks(stack: Stack, client: openai.OpenAI) -> None:
    """SIGKILL the ingest worker's process while it writes chunks: the task is redelivered, the file carries on
    from its last batch written and ends with exactly the chunks a clean run makes — none lost, none twice."""
    from sqlalchemy import create_engine, text

    from worker import chunking

    words = GARDEN.split()
    body = " ".join(f"Entry {i}: the {words[i % len(words)]} reading was {i * 7 % 101} units." for i in range(4000))
    expected = sum(1 for _ in chunking.chunks([body]))
    big = upload(client, "log.txt", body)
    vs = client.vector_stores.create(name="killed", file_ids=[big])
    engine = create_engine(stack.env["DATABASE_URL"])
    count = text("SELECT count(*), count(DISTINCT position) FROM chunk WHERE vector_store_id = :vs")
    deadline = time.monotonic() + 180  # the local model's first batch: seconds, unless the machine is loaded
    with engine.connect() as conn:
        while conn.execute(count, {"vs": vs.id}).one()[0] < 16:  # a first batch is written
            assert time.monotonic() < deadline, "ingestion did not start"
            conn.rollback()
            time.sleep(0.05)
        conn.rollback()
    children = stack.children("ingest-worker")
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    f = client.vector_stores.files.poll(big, vector_store_id=vs.id, poll_interval_ms=200)
    assert f.status == "completed", f
    with engine.connect() as conn:
        assert tuple(conn.execute(count, {"vs": vs.id}).one()) == (expected, expected)
    engine.dispose()


def test_a_lost_ingestion_task_is_enqueued_again_by_the_beat(stack: Stack, client: openai.OpenAI) -> None:
    """A store file committed but never enqueued (the API died in between) is found by the beat and indexed."""
    import psycopg

    notes = upload(client, "lost.md", "The lighthouse keeper feeds the cat at dawn.\n")
    vs = client.vector_stores.create(name="lost")
    dsn = stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:  # exactly the row the API would have committed
        conn.execute("INSERT INTO vector_store_file (vector_store_id, file_id, created_at, status, usage_bytes,"
                     " chunking_strategy, attempt) VALUES (%s, %s, %s, 'in_progress', 0, NULL, 0)",
                     (vs.id, notes, int(time.time()) - 10))
    f = client.vector_stores.files.poll(notes, vector_store_id=vs.id, poll_interval_ms=200)
    assert f.status == "completed" and f.usage_bytes > 0, f


def test_streamed_run_shows_the_search_call_and_the_cited_answer(client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"fs{uuid.uuid4().hex[:10]}"
    reactor = upload(client, "reactor.md", REACTOR)
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [reactor]}]}})
    [store] = assistant.tool_resources.file_search.vector_store_ids
    client.vector_stores.files.poll(reactor, vector_store_id=store, poll_interval_ms=100)
    model.script(word, search_call("coolant pressure range"), {"text": "Between 40 and 45 bar{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    created: list[str] = []
    found: list[str] = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.run.step.delta" and event.data.delta.step_details is not None:
                details = event.data.delta.step_details
                for c in getattr(details, "tool_calls", None) or []:
                    if c.id:
                        created.append(c.type)
                    else:  # then its results, once searched
                        found += [r["file_id"] for r in c.model_dump()["file_search"].get("results") or []]
        final = stream.get_final_messages()
    assert created == ["file_search"]  # announced once, while the model was still writing its call
    assert found and set(found) == {reactor}
    [note] = final[-1].content[0].text.annotations
    assert note.type == "file_citation" and note.file_citation.file_id == reactor
