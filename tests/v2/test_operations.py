"""What operators get from a running stack: Prometheus metrics from the API and from a worker, health probes."""

import re
import uuid

import httpx
import openai

from tests.model_server import ScriptedModel
from tests.stack import Stack


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus text exposition (labels in any order), or None."""
    for line in text.splitlines():
        m = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


def grew(before: str, after: str, name: str, **labels: str) -> bool:
    """The sample went up by at least one between two scrapes (absent counts as 0)."""
    return (sample(after, name, **labels) or 0) >= (sample(before, name, **labels) or 0) + 1


def test_metrics_follow_a_run(stack: Stack, client: openai.OpenAI, model: ScriptedModel) -> None:
    word = f"m{uuid.uuid4().hex[:8]}"
    model.script(word, {"text": "Counted."})
    before_api = httpx.get(f"{stack.root_url}/metrics").text
    before_worker = httpx.get(stack.worker_metrics_url).text
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Count.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"

    api = httpx.get(f"{stack.root_url}/metrics")
    assert api.status_code == 200 and api.headers["content-type"].startswith("text/plain")
    # Latency by route template, not by raw path (ids would make one series per thread).
    route = dict(method="POST", route="/v1/threads/{thread_id}/runs", status="200")
    assert grew(before_api, api.text, "assistants_http_request_duration_seconds_count", **route)
    assert thread.id not in api.text
    # Gauges read at scrape time from Postgres and Redis.
    for status in ("queued", "in_progress", "requires_action", "cancelling"):
        assert sample(api.text, "assistants_runs", status=status) is not None
    for queue in ("runs", "code", "ingest"):
        assert sample(api.text, "assistants_queue_depth", queue=queue) is not None
    assert sample(api.text, "assistants_sandbox_sessions") is not None

    # The worker's figures are summed over its prefork children.
    worker = httpx.get(stack.worker_metrics_url).text
    task = dict(task="assistants.runs.advance", outcome="success")
    assert grew(before_worker, worker, "assistants_task_duration_seconds_count", **task)
    done = dict(status="completed")
    assert grew(before_worker, worker, "assistants_runs_finished_total", **done)
    calls = dict(model="gpt-4o", outcome="ok")
    assert grew(before_worker, worker, "assistants_model_request_duration_seconds_count", **calls)
    assert (sample(worker, "assistants_model_tokens_total", model="gpt-4o", kind="completion") or 0) > 0


def test_health_probes(stack: Stack) -> None:
    assert httpx.get(f"{stack.root_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.root_url}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}
