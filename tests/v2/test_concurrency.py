"""Runs at real-model speed: a slow model's calls overlap in one runs worker process (gevent), so a run takes the
model's time plus a little, however many are in flight — and the worker holds no database connection while the
model streams."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import psycopg
import redis

from tests.model_server import ScriptedModel
from tests.stack import Stack
from tests.v2.test_resilience import dsn

RUNS = 40
MODEL_SECONDS = 4.0  # 2 s before the first token, then 20 words at 10 per second


def test_slow_model_calls_overlap_in_one_worker_process(stack: Stack, client: openai.OpenAI,
                                                        model: ScriptedModel) -> None:
    word = f"slow{uuid.uuid4().hex[:8]}"
    for i in range(RUNS):
        model.script(f"{word}-{i} ", {"text": " ".join(["tok"] * 20), "ttft": 2.0, "chunk_delay": 0.1})
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": f"{word}-{i} "}])
               for i in range(RUNS)]
    model.reset_peak()
    connections: list[int] = []

    def one(i: int) -> float:
        began = time.monotonic()
        run = client.beta.threads.runs.create_and_poll(thread_id=threads[i].id, assistant_id=assistant.id,
                                                       poll_interval_ms=250)
        assert run.status == "completed", run.last_error
        return time.monotonic() - began

    with ThreadPoolExecutor(RUNS) as pool, psycopg.connect(dsn(stack), autocommit=True) as pg:
        began = time.monotonic()
        futures = [pool.submit(one, i) for i in range(RUNS)]
        while not all(f.done() for f in futures):
            connections.append(pg.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                          "'assistants-worker'").fetchone()[0])  # type: ignore[index]
            time.sleep(0.2)
        took = [f.result() for f in futures]
        wall = time.monotonic() - began
    # Every call was in flight at once, in the one runs worker process (-P gevent)...
    assert model.max_in_flight >= RUNS * 0.9, model.max_in_flight
    assert stack.children("worker") == []  # no pool processes: one process holds them all
    # ...so the whole batch took about one model call, not RUNS of them (a prefork -c 4 pool: ~10 x 4 s).
    assert wall < MODEL_SECONDS * 3, (wall, sorted(took))
    # And no connection was held per streaming run: the runs worker's pool stays far below the runs in flight.
    assert 0 < max(connections) <= 20, connections
    for t in threads[:3]:
        reply = client.beta.threads.messages.list(t.id).data[0]
        assert reply.content[0].text.value == " ".join(["tok"] * 20)


def test_open_streams_share_one_redis_reader(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    """40 clients streaming runs through a silence: the API follows all their streams with one blocked XREAD,
    not one per stream (Redis's clients are also the broker's; its default maxclients is 10,000)."""
    r = redis.Redis.from_url(stack.env["REDIS_URL"])
    word = f"open{uuid.uuid4().hex[:8]}"
    n = 40
    for i in range(n):
        model.script(f"{word}-{i} ", {"text": "after the silence", "ttft": 6.0})
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": f"{word}-{i} "}]) for i in range(n)]
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    done: list[bytes] = []

    def stream(i: int) -> None:
        with httpx.stream("POST", f"{stack.base_url}/threads/{threads[i].id}/runs", headers=headers,
                          json={"assistant_id": assistant.id, "stream": True}, timeout=120) as response:
            done.append(b"".join(response.iter_raw()))

    def blocked_stream_reads() -> int:
        # Counted by command, not Redis's blocked_clients total: the workers' queue reads (BRPOP, re-issued every
        # second) come and go in that total.
        return sum(1 for c in r.client_list() if c.get("cmd") == "xread" and "b" in c.get("flags", ""))

    workers = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    time.sleep(3)  # every stream is open and silent
    during = []
    for _ in range(20):  # over 2 s of the silence: the reader re-issues its XREAD, so one sample could miss it
        during.append(blocked_stream_reads())
        time.sleep(0.1)
    for w in workers:
        w.join()
    assert len(done) == n and all(b"event: thread.run.completed" in body for body in done)
    assert max(during) == 1, during  # one API process: one blocked read for its 40 open streams


def test_the_runs_workers_task_events_go_out_in_batches(stack: Stack, client: openai.OpenAI) -> None:
    """Flower follows tasks through their events. The gevent runs worker sends a task's three (received, started,
    succeeded) buffered into batches, as a prefork worker does, rather than a Redis message each."""
    from celery import Celery

    app = Celery(broker=stack.env["REDIS_URL"])
    bodies: list[object] = []
    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": lambda event: None})
        listen = receiver._receive

        def keep(body: object, message: object) -> None:  # the message as it came: one event, or a batch
            bodies.append(body)
            listen(body, message)

        receiver._receive = keep  # type: ignore[method-assign]
        listener = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True)
        listener.start()
        time.sleep(1.0)  # subscribed
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(assistant_id=assistant.id, poll_interval_ms=100, thread={
            "messages": [{"role": "user", "content": "hello"}]})
        assert run.status == "completed"
        deadline, kinds = time.monotonic() + 10, set()
        while time.monotonic() < deadline and kinds != {"task-received", "task-started", "task-succeeded"}:
            time.sleep(0.2)
            batched = [e for b in list(bodies) if isinstance(b, list) for e in b]
            ours = {e["uuid"] for e in batched if e.get("type") == "task-received" and run.id in e.get("args", "")}
            kinds = {e["type"] for e in batched if e.get("uuid") in ours}
        receiver.should_stop = True
        listener.join(timeout=10)
    assert kinds == {"task-received", "task-started", "task-succeeded"}, bodies[-5:]
