"""The edges of a run's wait for its files, on a stack of its own with a short bound (FILE_SEARCH_WAIT_SECONDS)
and no ingestion nudges, where a file can be left `in_progress` for as long as a test likes: a row written
straight into vector_store_file, as the API writes it, whose ingestion never starts.

A file that never finishes holds the run up to the bound and no longer (not again after a search); a cancel
ends a waiting run at once; runs without file_search, expired stores and failed files do not wait; the wait
follows the files in scope as they change."""

import io
import json
import time
import uuid
from collections.abc import Iterator

import openai
import psycopg
import pytest

from tests import stack as stack_mod
from tests.model_server import ScriptedModel

BOUND = 20  # seconds: long enough to tell from a run's ordinary latency on a loaded machine
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel) -> Iterator[stack_mod.Stack]:
    s = stack_mod.start(tmp_path_factory.mktemp("file-wait"), {
        "LLM_BASE_URL": model.base_url, "LLM_API_KEY": "test", "FILE_SEARCH_WAIT_SECONDS": str(BOUND),
        "INGEST_STALE_SECONDS": "3600", "SANDBOX_POOL_SIZE": "0"})
    yield s
    stack_mod.stop(s)


@pytest.fixture(scope="module")
def client(bounded: stack_mod.Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=bounded.base_url, api_key=bounded.api_key)


def sql(stack: stack_mod.Stack, statement: str, *args: object) -> None:
    dsn = stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, args)  # type: ignore[arg-type]


def stuck_file(stack: stack_mod.Stack, client: openai.OpenAI, store: str, status: str = "in_progress") -> str:
    """A file in `store` whose ingestion was never enqueued: it stays `status` until the test changes it."""
    file_id = client.files.create(file=("stuck.txt", io.BytesIO(b"Nothing to see here.\n")),
                                  purpose="assistants").id
    sql(stack, "INSERT INTO vector_store_file (vector_store_id, file_id, created_at, status, usage_bytes,"
               " chunking_strategy, attempt) VALUES (%s, %s, %s, %s, 0, NULL, 0)",
        store, file_id, int(time.time()), status)
    return file_id


def set_status(stack: stack_mod.Stack, store: str, file_id: str, status: str) -> None:
    sql(stack, "UPDATE vector_store_file SET status = %s WHERE vector_store_id = %s AND file_id = %s",
        status, store, file_id)


def finish(client: openai.OpenAI, thread_id: str, run_id: str, timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while (run := client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)).status not in TERMINAL:
        assert time.monotonic() < deadline, run.status
        time.sleep(0.2)
    return run


def started(client: openai.OpenAI, thread_id: str, run_id: str) -> None:
    deadline = time.monotonic() + 60
    while client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def search_call(query: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "file_search", "arguments": json.dumps({"query": query})}]}


def test_a_file_that_never_finishes_holds_the_run_only_up_to_the_bound(
        bounded: stack_mod.Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"bound{uuid.uuid4().hex[:8]}"
    store = client.vector_stores.create(name="stuck").id
    stuck = stuck_file(bounded, client, store)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [store]}})
    model.script(word, search_call("anything"), {"text": "I found nothing."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = finish(client, thread.id, client.beta.threads.runs.create(thread_id=thread.id,
                                                                   assistant_id=assistant.id).id)
    assert run.status == "completed", run.last_error  # type: ignore[attr-defined]
    tool, message = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data  # type: ignore[attr-defined]
    assert tool.type == "tool_calls" and message.type == "message_creation"
    waited = tool.created_at - run.started_at  # type: ignore[attr-defined]
    assert BOUND - 1 <= waited < BOUND + 30, f"the first model call came {waited} s after the start"
    # After the search the run went on at once: the bound is the run's, not every model call's.
    assert message.created_at - tool.completed_at < BOUND / 2, (tool.completed_at, message.created_at)
    assert model.requests_for(word)[1]["messages"][-1]["content"] == "No results found in the files."
    assert client.vector_stores.files.retrieve(stuck, vector_store_id=store).status == "in_progress"


def test_cancelling_a_waiting_run_is_prompt(bounded: stack_mod.Stack, client: openai.OpenAI,
                                            model: ScriptedModel) -> None:
    """Here the file waits in the thread's store."""
    word = f"cancel{uuid.uuid4().hex[:8]}"
    store = client.vector_stores.create(name="thread store").id
    stuck_file(bounded, client, store)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}],
                                        tool_resources={"file_search": {"vector_store_ids": [store]}})
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    started(client, thread.id, run.id)
    time.sleep(2)  # well into its wait
    asked = time.monotonic()
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    ended = finish(client, thread.id, run.id, timeout=BOUND)
    assert ended.status == "cancelled"  # type: ignore[attr-defined]
    assert time.monotonic() - asked < BOUND / 2
    time.sleep(2)
    assert model.requests_for(word) == []  # nothing of the cancelled run reached the model, then or later


def test_runs_without_file_search_do_not_wait(bounded: stack_mod.Stack, client: openai.OpenAI,
                                              model: ScriptedModel) -> None:
    """A thread whose store has a file still indexing (and a message attachment for file_search), run by an
    assistant with only code_interpreter: nothing will search, so nothing waits."""
    word = f"nofs{uuid.uuid4().hex[:8]}"
    store = client.vector_stores.create(name="thread store").id
    stuck_file(bounded, client, store)
    notes = client.files.create(file=("notes.txt", io.BytesIO(b"Some notes.\n")), purpose="assistants").id
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": word,
                   "attachments": [{"file_id": notes, "tools": [{"type": "file_search"}]}]}],
        tool_resources={"file_search": {"vector_store_ids": [store]}})
    run = finish(client, thread.id, client.beta.threads.runs.create(thread_id=thread.id,
                                                                   assistant_id=assistant.id).id)
    assert run.status == "completed", run.last_error  # type: ignore[attr-defined]
    assert run.completed_at - run.started_at < BOUND / 2  # type: ignore[attr-defined]
    offered = [t["function"]["name"] for t in model.requests_for(word)[0]["tools"]]
    assert "file_search" not in offered


def test_expired_stores_and_failed_files_do_not_hold_a_run(bounded: stack_mod.Stack, client: openai.OpenAI,
                                                           model: ScriptedModel) -> None:
    word = f"done{uuid.uuid4().hex[:8]}"
    expired = client.vector_stores.create(name="expired").id
    stuck_file(bounded, client, expired)
    sql(bounded, "UPDATE vector_store SET expires_at = %s WHERE id = %s", int(time.time()) - 60, expired)
    assert client.vector_stores.retrieve(expired).status == "expired"
    live = client.vector_stores.create(name="failed file").id
    stuck_file(bounded, client, live, status="failed")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [expired]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}],
                                        tool_resources={"file_search": {"vector_store_ids": [live]}})
    run = finish(client, thread.id, client.beta.threads.runs.create(thread_id=thread.id,
                                                                   assistant_id=assistant.id).id)
    assert run.status == "completed", run.last_error  # type: ignore[attr-defined]
    assert run.completed_at - run.started_at < BOUND / 2  # type: ignore[attr-defined]


def test_the_wait_follows_the_files_in_scope(bounded: stack_mod.Stack, client: openai.OpenAI,
                                             model: ScriptedModel) -> None:
    """A file added while the run waits is waited for too; once none is left in progress the run goes on,
    long before the bound."""
    word = f"follow{uuid.uuid4().hex[:8]}"
    store = client.vector_stores.create(name="changing").id
    first = stuck_file(bounded, client, store)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [store]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    started(client, thread.id, run.id)
    time.sleep(1)
    second = stuck_file(bounded, client, store)  # a second file joins the store while the run waits
    set_status(bounded, store, first, "completed")
    time.sleep(4)  # the run looked again several times meanwhile
    assert model.requests_for(word) == [], "the run went on while a file of its store was still indexing"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    set_status(bounded, store, second, "failed")
    ended = finish(client, thread.id, run.id)
    assert ended.status == "completed", ended.last_error  # type: ignore[attr-defined]
    [message] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert message.created_at - ended.started_at < BOUND - 5, "the run waited on after its files were done"  # type: ignore[attr-defined]
    assert len(model.requests_for(word)) == 1
