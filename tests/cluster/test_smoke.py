"""Smoke test of the local cluster (`make up`): Docker Compose with the images built offline, driven through the
official SDK via the proxy — an assistant end to end (code_interpreter included, so the sandbox path through the
host's engine is exercised), workers scaled from 1 to 3 with throughput rising, a worker container killed mid-run
with the run still finishing once, Flower and the metrics answering, JSON logs carrying the run's id.

Runs as `make smoke` (part of `make test`). The only stand-in is the scripted model, on this host, which the
cluster reaches as host.docker.internal — where users run Ollama or a llama.cpp server."""

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from deploy.compose.cluster import Cluster
from deploy.local.stack import free_port
from tests.model_server import ScriptedModel
from tests.v2.test_operations import sample

PROJECT = "assistants-smoke"


@pytest.fixture(scope="module")
def cluster_model() -> Iterator[ScriptedModel]:
    m = ScriptedModel(host="0.0.0.0").start()  # containers reach it through the bridge's gateway
    yield m
    m.stop()


@pytest.fixture(scope="module")
def cluster(cluster_model: ScriptedModel) -> Iterator[Cluster]:
    port = cluster_model.server.server_address[1]
    c = Cluster(PROJECT, api_port=free_port(), flower_port=free_port(), extra_env={
        "LLM_BASE_URL": f"http://host.docker.internal:{port}/v1", "LLM_API_KEY": "test",
        # One task at a time per runs worker, so that adding workers is what adds throughput; a brisk beat, so
        # that a killed worker's run is picked up again in seconds rather than minutes.
        "RUNS_CONCURRENCY": "1", "RUN_SWEEP_SECONDS": "2", "RUN_STALE_RUNNING_SECONDS": "8"})
    c.down(purge=True)  # whatever an interrupted earlier run left
    try:
        c.up(api_replicas=2, runs_workers=1)
        yield c
    finally:
        # On failure pytest shows this: the last lines of every service.
        print(c.compose("logs", "--no-color", "--tail", "40", check=False, capture=True).stdout[-20000:])
        c.down(purge=True)


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> openai.OpenAI:
    info = cluster.info
    return openai.OpenAI(base_url=info["base_url"], api_key=info["api_key"], max_retries=0)


def code(src: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": json.dumps({"code": src})}]}


def inspect(cluster: Cluster, what: str) -> dict[str, Any]:
    """`celery inspect <what>` asked from the beat's container, inside the network: {worker hostname: answer}."""
    out = cluster.compose("exec", "-T", "beat", "celery", "-A", "worker.celery_app", "inspect", what, "--json",
                          check=False, capture=True)
    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {}


def runs_workers(cluster: Cluster) -> list[str]:
    """Hostnames of the runs workers answering a ping."""
    return sorted(h for h in inspect(cluster, "ping") if h.startswith("runs@"))


def wait_for_workers(cluster: Cluster, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(runs_workers(cluster)) != n:
        assert time.monotonic() < deadline, f"expected {n} runs workers, have {runs_workers(cluster)}"
        time.sleep(1)


def test_assistant_end_to_end(cluster: Cluster, client: openai.OpenAI, cluster_model: ScriptedModel) -> None:
    word = f"s{uuid.uuid4().hex[:8]}"
    cluster_model.script(word, code("x = (14 - 11) / 3\nprint(f'x = {x}')"), {"text": "The solution is x = 1."})
    assistant = client.beta.assistants.create(model="gpt-4o", name="Math Tutor", tools=[{"type": "code_interpreter"}],
                                              instructions="You are a personal math tutor.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Solve 3x + 11 = 14. {word}"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=200, timeout=180)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.code_interpreter.outputs[0].logs == "x = 1.0\n"  # type: ignore[union-attr]
    reply = client.beta.threads.messages.list(thread.id, order="desc", limit=1).data[0]
    assert reply.content[0].text.value == "The solution is x = 1."  # type: ignore[union-attr]

    # Streaming through the proxy: events arrive as they are produced, in OpenAI's order.
    word2 = f"s{uuid.uuid4().hex[:8]}"
    cluster_model.script(word2, {"text": "Streamed through nginx.", "chunk_delay": 0.01})
    client.beta.threads.messages.create(thread.id, role="user", content=word2)
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        names = [e.event for e in stream]
        final = stream.get_final_messages()
    assert names[0] == "thread.run.created" and names[-1] == "thread.run.completed"
    assert names.count("thread.message.delta") >= 2
    assert final[0].content[0].text.value == "Streamed through nginx."  # type: ignore[union-attr]

    # The workers' JSON log lines carry the run's id.
    logs = cluster.compose("logs", "--no-color", "worker-runs", capture=True).stdout
    lines = [json.loads(part) for line in logs.splitlines() if "{" in line
             for part in [line[line.index("{"):]] if part.rstrip().endswith("}")]
    assert any(entry.get("run_id") == run.id for entry in lines), logs[-3000:]


def _throughput(client: openai.OpenAI, assistant_id: str, word: str, n: int) -> float:
    """Completed runs per second for n runs submitted at once (each: a thread with a message, then a run)."""
    def one(_: int) -> str:
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant_id, thread={"messages": [{"role": "user", "content": word}]},
            poll_interval_ms=100, timeout=300)
        return run.status

    began = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(one, range(n)))
    assert statuses == ["completed"] * n
    return n / (time.monotonic() - began)


def test_scaling_runs_workers_raises_throughput(cluster: Cluster, client: openai.OpenAI,
                                                cluster_model: ScriptedModel) -> None:
    word = f"s{uuid.uuid4().hex[:8]}"
    n = 18
    # Every answer takes 0.8 s upstream, as a real model's would: a runs worker (one task at a time here) is busy
    # waiting, and only more workers complete more runs per second. (Long enough that the clients' own start-up
    # and polling, a fixed cost, do not blur the ratio: ideally 3x.)
    cluster_model.script(word, *[{"text": "Done.", "delay": 0.8}] * (4 * n))
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.")
    wait_for_workers(cluster, 1)
    one = _throughput(client, assistant.id, word, n)
    cluster.scale("worker-runs", 3)
    wait_for_workers(cluster, 3)
    three = _throughput(client, assistant.id, word, n)
    print(f"runs/s with 1 worker: {one:.2f}, with 3: {three:.2f}")
    assert three > 1.5 * one  # ideally 3x; the clients, API and proxy share the same 2 cores


def holder_of(cluster: Cluster, run_id: str) -> str:
    """The runs worker container executing the run's step (a worker's hostname is its container's id)."""
    active = inspect(cluster, "active")
    holder = next(h for h, tasks in active.items() for t in tasks if run_id in json.dumps(t.get("args")))
    return next(c for c in cluster.containers("worker-runs") if c.startswith(holder.split("@", 1)[1]))


def wait_for_model_call(model: ScriptedModel, word: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not model.requests_for(word):
        assert time.monotonic() < deadline, "the model was never called"
        time.sleep(0.2)


def test_worker_stopped_mid_run_finishes_its_step_first(cluster: Cluster, client: openai.OpenAI,
                                                        cluster_model: ScriptedModel) -> None:
    """Graceful shutdown: SIGTERM (docker stop, a rolling update) lets the running step finish; nothing is redone."""
    if len(runs_workers(cluster)) < 2:
        cluster.scale("worker-runs", 2)
        wait_for_workers(cluster, 2)
    word = f"s{uuid.uuid4().hex[:8]}"
    cluster_model.script(word, {"text": "Finished before stopping.", "delay": 8})
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_for_model_call(cluster_model, word)
    container = holder_of(cluster, run.id)
    began = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "60", container], check=True, capture_output=True)
    assert time.monotonic() - began > 2  # it waited for the step
    done = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert done.status == "completed", (done.status, done.last_error)
    assert len(cluster_model.requests_for(word)) == 1
    subprocess.run(["docker", "start", container], check=True, capture_output=True)


def test_worker_killed_mid_run_and_the_run_finishes(cluster: Cluster, client: openai.OpenAI,
                                                    cluster_model: ScriptedModel) -> None:
    wait_for_workers(cluster, len(cluster.containers("worker-runs")))  # the stopped one is back
    word = f"s{uuid.uuid4().hex[:8]}"
    # The first answer never comes in time: the worker waiting for it is killed.
    cluster_model.script(word, {"text": "Lost with the worker.", "delay": 30}, {"text": "Survived."})
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_for_model_call(cluster_model, word)
    subprocess.run(["docker", "kill", holder_of(cluster, run.id)], check=True, capture_output=True)

    done = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=500, timeout=180)
    assert done.status == "completed", done.last_error
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content[0].text.value == "Survived."  # type: ignore[union-attr]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert len(steps) == 1 and steps[0].status == "completed"


def scrape(container: str, port: int) -> str:
    """A container's /metrics, read from inside it ("" from one an earlier test stopped)."""
    return subprocess.run(["docker", "exec", container, "python", "-c",
                           "import urllib.request; print(urllib.request.urlopen("
                           f"'http://127.0.0.1:{port}/metrics', timeout=5).read().decode())"],
                          capture_output=True, text=True).stdout


def test_flower_and_metrics_answer(cluster: Cluster) -> None:
    info = cluster.info
    assert httpx.get(f"{info['flower_url']}/healthcheck").text == "OK"
    dashboard = httpx.get(f"{info['flower_url']}/workers").text
    for queue in ("runs@", "code@", "ingest@", "webhooks@"):
        assert queue in dashboard
    broker = httpx.get(f"{info['flower_url']}/broker").text  # every queue with its depth
    for queue in ("runs", "code", "ingest", "webhooks"):
        assert f"<td>{queue}</td>" in broker
    # Task events reach Flower from the gevent runs workers too: their steps are listed, succeeded.
    table = httpx.get(f"{info['flower_url']}/tasks/datatable", params={
        "draw": 1, "start": 0, "length": 100, "search[value]": "assistants.runs.advance",
        "order[0][column]": 0, "columns[0][data]": "started", "order[0][dir]": "desc"}).json()
    steps = [t for t in table["data"] if t["name"] == "assistants.runs.advance"]
    assert any(t["state"] == "SUCCESS" and str(t["worker"]).startswith("runs@") for t in steps), table["data"][:3]

    api = httpx.get(info["metrics_url"]).text
    for q in ("runs", "code", "ingest", "webhooks"):
        assert sample(api, "assistants_queue_depth", queue=q) is not None
    # Each replica counts the requests it served (the proxy spreads them), so every replica is scraped, inside
    # the cluster network as Prometheus would; likewise the runs workers.
    created = sum(sample(scrape(c, 8000), "assistants_http_request_duration_seconds_count", method="POST",
                         route="/v1/threads/{thread_id}/runs", status="200") or 0
                  for c in cluster.containers("api"))
    assert created >= 1
    advanced = sum(sample(scrape(c, 9100), "assistants_task_duration_seconds_count",
                          task="assistants.runs.advance", outcome="success") or 0
                   for c in cluster.containers("worker-runs"))
    assert advanced >= 1
    assert urllib.request.urlopen(f"{info['base_url'][:-3]}/healthz").status == 200


def test_api_replicas_drain_streams_when_stopped(cluster: Cluster, client: openai.OpenAI,
                                                 cluster_model: ScriptedModel) -> None:
    """Graceful shutdown of the API: SIGTERM stops new connections, and a stream in flight runs to its end."""
    word = f"s{uuid.uuid4().hex[:8]}"
    reply = "One two three four five six seven eight nine ten eleven twelve."
    cluster_model.script(word, {"text": reply, "chunk_delay": 0.4})
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Count slowly.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    names: list[str] = []
    stopping: list[subprocess.Popen[bytes]] = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            names.append(event.event)
            if event.event == "thread.message.delta" and not stopping:
                # Every replica gets SIGTERM now, the one serving this stream among them.
                stopping = [subprocess.Popen(["docker", "stop", "-t", "30", c]) for c in cluster.containers("api")]
        final = stream.get_final_messages()
    assert stopping and names[-1] == "thread.run.completed"
    assert final[0].content[0].text.value == reply  # type: ignore[union-attr]
    for p in stopping:
        assert p.wait(timeout=60) == 0
    cluster.compose("up", "-d", "--no-recreate", "--no-deps", "--scale", "api=2", "api")
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{cluster.api_url}/readyz", timeout=3).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not come back"
        time.sleep(1)


def test_down_keeps_the_data_and_up_brings_it_back(cluster: Cluster, client: openai.OpenAI) -> None:
    """`make down` stops the containers and keeps the volumes: the same key and objects after `make up`."""
    assistant = client.beta.assistants.create(model="gpt-4o", name="Survives restarts")
    key = cluster.info["api_key"]
    cluster.down()
    assert not cluster.containers("api")
    info = cluster.up(api_replicas=2, runs_workers=1)
    assert info["api_key"] == key
    again = openai.OpenAI(base_url=info["base_url"], api_key=key, max_retries=0)
    assert again.beta.assistants.retrieve(assistant.id).name == "Survives restarts"


def test_playground_is_served_through_the_proxy(cluster: Cluster) -> None:
    """The image ships the playground's files (page, scripts, vendored libraries) and the proxy passes them on."""
    root = cluster.info["base_url"][:-3]
    page = httpx.get(f"{root}/playground/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and '<div id="app">' in page.text
    assert page.headers["content-encoding"] == "gzip" and "script-src 'self'" in page.headers["content-security-policy"]
    for path in ("js/main.js", "vendor/marked/marked.esm.js", "vendor/dompurify/LICENSE"):
        assert httpx.get(f"{root}/playground/{path}").status_code == 200, path


def test_a_stream_outlasts_a_silence_through_the_proxy(cluster: Cluster, client: openai.OpenAI,
                                                       cluster_model: ScriptedModel) -> None:
    """A model silent for 20 s before its first token (longer than the API's Redis socket timeout, the relay's
    XREAD BLOCK and the keep-alive period): the stream through nginx carries keep-alives and then the answer."""
    word = f"s{uuid.uuid4().hex[:8]}"
    cluster_model.script(word, {"text": "After a long think.", "ttft": 20})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    headers = {"Authorization": f"Bearer {cluster.info['api_key']}", "OpenAI-Beta": "assistants=v2"}
    with httpx.stream("POST", f"{cluster.info['base_url']}/threads/{thread.id}/runs", headers=headers,
                      json={"assistant_id": assistant.id, "stream": True}, timeout=120) as response:
        body = b"".join(response.iter_raw())
    assert b"\n: keep-alive\n" in body and b"event: thread.run.completed" in body
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.content[0].text.value == "After a long think."  # type: ignore[union-attr]


def _restart_under_load(cluster: Cluster, client: openai.OpenAI, model: ScriptedModel, service: str) -> None:
    """`docker restart` of a dependency while 20 runs are mid-answer: every run completes exactly once."""
    word = f"s{uuid.uuid4().hex[:8]}"
    n = 20
    answer = " ".join(["steady"] * 30)
    for i in range(n):
        model.script(f"{word}-{i} ", {"text": answer, "chunk_delay": 0.1}, {"text": answer})
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": f"{word}-{i} "}]) for i in range(n)]
    runs = [client.beta.threads.runs.create(thread_id=t.id, assistant_id=assistant.id) for t in threads]
    deadline = time.monotonic() + 60
    while not all(model.requests_for(f"{word}-{i} ") for i in range(n)):
        assert time.monotonic() < deadline, "not every run reached the model"
        time.sleep(0.1)
    [container] = cluster.containers(service)
    subprocess.run(["docker", "restart", "-t", "10", container], check=True, capture_output=True)
    patient = openai.OpenAI(base_url=cluster.info["base_url"], api_key=cluster.info["api_key"], max_retries=8)
    for thread, run in zip(threads, runs, strict=True):
        done = patient.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=500, timeout=240)
        assert done.status == "completed", (service, done.status, done.last_error)
        messages = patient.beta.threads.messages.list(thread.id).data
        assert [m.role for m in messages] == ["assistant", "user"]
        assert messages[0].content[0].text.value == answer  # type: ignore[union-attr]
        assert len(patient.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data) == 1
    api_logs = cluster.compose("logs", "--no-color", "api", capture=True).stdout
    assert "unhandled error" not in api_logs


def test_dependency_restarts_under_in_flight_runs(cluster: Cluster, client: openai.OpenAI,
                                                  cluster_model: ScriptedModel) -> None:
    # Runs workers as `make up` runs them (gevent, many steps each), not one task at a time as above.
    cluster.env["RUNS_CONCURRENCY"] = "200"
    cluster.compose("up", "-d", "--no-deps", "--force-recreate", "--scale", "worker-runs=1", "worker-runs")
    wait_for_workers(cluster, 1)
    _restart_under_load(cluster, client, cluster_model, "redis")
    _restart_under_load(cluster, client, cluster_model, "postgres")
