"""A large file is ingested in bounded memory, through a remote (OpenAI-compatible) embeddings endpoint: a stack
of its own whose workers embed via the scripted server's /v1/embeddings (64 dimensions), so the test measures
the pipeline's memory rather than waiting on the local model's CPU."""

import io
import json
import random
import time
import uuid
from collections.abc import Iterator

import openai
import pytest

from tests import stack as stack_mod
from tests.model_server import EMBEDDING_DIM, ScriptedModel
from tests.stack import peak_rss

MB = 1 << 20


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel) -> Iterator[stack_mod.Stack]:
    s = stack_mod.start(tmp_path_factory.mktemp("remote-embeddings"), {
        "LLM_BASE_URL": model.base_url, "LLM_API_KEY": "test", "EMBEDDINGS_BASE_URL": model.base_url,
        "EMBEDDINGS_MODEL": "scripted-embedder", "EMBEDDINGS_DIM": str(EMBEDDING_DIM),
        # 12 MB of these made-up words is ~6M of the model's tokens, over the default cap per file.
        "INGEST_MAX_FILE_TOKENS": "20000000"})
    yield s
    stack_mod.stop(s)


def text_of(megabytes: int, rng: random.Random) -> bytes:
    words = [f"w{n}" for n in range(5000)]
    lines, size = [], 0
    while size < megabytes * MB:
        line = " ".join(rng.choices(words, k=14)) + f". Reading {rng.randint(0, 10**6)}.\n"
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()


def index(client: openai.OpenAI, name: str, body: bytes) -> tuple[str, str]:
    f = client.files.create(file=(name, io.BytesIO(body)), purpose="assistants")
    vs = client.vector_stores.create(name=name, file_ids=[f.id])
    deadline = time.monotonic() + 400
    while (row := client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id)).status == "in_progress":
        assert time.monotonic() < deadline, "ingestion took too long"
        time.sleep(0.5)
    assert row.status == "completed", row.last_error
    return vs.id, f.id


@pytest.mark.timeout(900)
def test_ingestion_memory_does_not_grow_with_the_file(remote: stack_mod.Stack, model: ScriptedModel) -> None:
    """The ingest worker's peak memory after a 2 MB file and after a 12 MB one are about the same: text is read,
    chunked and embedded in bounded pieces, never held whole."""
    client = openai.OpenAI(base_url=remote.base_url, api_key=remote.api_key)
    rng = random.Random(3)
    needle = b"The observatory dome opens at dusk for the comet survey.\n"
    index(client, "warm.txt", needle * 50)  # the worker loads what ingestion needs (SDK, tokenizer) first
    [child] = remote.children("ingest-worker")
    before = peak_rss(child)
    index(client, "small.txt", text_of(2, rng))
    small = peak_rss(child)
    body = text_of(12, rng)
    body = body[: len(body) // 2] + b"\n" + needle + body[len(body) // 2:]
    started = time.monotonic()
    vs_id, big_id = index(client, "big.txt", body)
    print(f"\n12 MB indexed in {time.monotonic() - started:.0f} s (remote embeddings)")
    grown = peak_rss(child) - small
    assert small - before < 100 * MB, f"{(small - before) / MB:.0f} MB for the 2 MB file"
    assert grown < 16 * MB, f"the peak grew by {grown / MB:.0f} MB more for a 12 MB file than for a 2 MB one"

    # Queries are embedded by the same endpoint: the needle is found and cited.
    word = f"big{uuid.uuid4().hex[:8]}"
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [vs_id]}})
    model.script(word, {"tool_calls": [{"name": "file_search", "arguments": json.dumps(
        {"query": "when does the observatory dome open for the comet survey"})}]}, {"text": "At dusk{cite:0}."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, timeout=120)
    assert run.status == "completed", run.last_error
    [note] = client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text.annotations
    quote = note.model_dump()["file_citation"]["quote"]
    assert note.file_citation.file_id == big_id, note
    assert quote.encode() in body  # verbatim from the file
    # The hashed test embeddings rank noise, but the full-text side finds the one chunk with these words.
    assert "observatory dome opens at dusk" in model.requests_for(word)[1]["messages"][-1]["content"]
