"""Webhooks end to end: endpoints managed over HTTP and in the admin CLI, run and vector store events delivered by
the `webhooks` workers to a receiver in this test, which verifies every signature with the official SDK; a
receiver failing then succeeding, one that keeps failing (its endpoint disabled), a delivery worker killed
mid-delivery. Everything runs in a project of its own, so other tests' runs send nothing here."""

import io
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from tests.model_server import ScriptedModel
from tests.stack import Stack
from tests.v2.test_runs import WEATHER


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A webhook receiver on loopback. Paths choose its behaviour: /ok/… answers 200, /flaky/… 500 to the first
    request and 200 after, /fail/… always 500, /hang/… holds its first request until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def seen(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait(self, path: str, count: int, timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.seen(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        got = self.seen(path)
        assert len(got) >= count, f"{path}: {len(got)} of {count} requests after {timeout}s"
        return got

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    earlier = [r for r in receiver.received if r.path == self.path]
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, time.time()))
                kind = self.path.split("/")[1]
                if kind == "hang" and not earlier:
                    receiver.release.wait(60)
                fail = kind == "fail" or (kind == "flaky" and not earlier)
                answer = b"receiver is down" if fail else b"ok"
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.release.set()
    r.server.shutdown()


@pytest.fixture(scope="module")
def hooks(stack: Stack, fresh_client: openai.OpenAI) -> Iterator[httpx.Client]:
    """Raw HTTP for /v1/webhooks (an extension the SDK has no methods for), with this module's project's key."""
    with httpx.Client(base_url=stack.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {fresh_client.api_key}"}) as http:
        yield http


def tag() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


def create(hooks: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    r = hooks.post("/webhooks", json={"url": url, **fields})
    assert r.status_code == 200, r.text
    return dict(r.json())


def verified(client: openai.OpenAI, got: Received, secret: str) -> Any:
    """The event, as the SDK reads it after checking the signature (it raises if the signature is wrong)."""
    return client.webhooks.unwrap(got.body, got.headers, secret=secret)


def finished_run(client: openai.OpenAI, model: ScriptedModel, text: str = "Done.") -> Any:
    word = tag()
    model.script(word, {"text": text})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=50)
    assert run.status == "completed"
    return run


def deliveries(hooks: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    r = hooks.get(f"/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_endpoints_are_managed_over_http(hooks: httpx.Client, receiver: Receiver, stack: Stack,
                                         other_key: str) -> None:
    made = create(hooks, receiver.url("/ok/crud"), description="orders", metadata={"team": "ops"})
    assert made["id"].startswith("wh_") and made["object"] == "webhook" and made["status"] == "enabled"
    assert made["secret"].startswith("whsec_") and made["description"] == "orders"
    assert made["metadata"] == {"team": "ops"} and made["disabled_reason"] is None
    assert "thread.run.completed" in made["events"] and "vector_store.file.failed" in made["events"]  # all
    got = hooks.get(f"/webhooks/{made['id']}").json()
    assert "secret" not in got and got["url"] == made["url"]
    second = create(hooks, receiver.url("/ok/crud2"), events=["thread.run.failed"])
    assert second["events"] == ["thread.run.failed"]
    page = hooks.get("/webhooks", params={"limit": 1}).json()
    assert page["object"] == "list" and page["has_more"] and page["data"][0]["id"] == second["id"]
    rest = hooks.get("/webhooks", params={"after": second["id"]}).json()
    assert made["id"] in [w["id"] for w in rest["data"]]
    changed = hooks.post(f"/webhooks/{made['id']}", json={"events": ["thread.run.expired"], "status": "disabled",
                                                        "description": None}).json()
    assert changed["events"] == ["thread.run.expired"] and changed["status"] == "disabled"
    assert changed["description"] is None and changed["disabled_reason"] == "Disabled by request."
    back = hooks.post(f"/webhooks/{made['id']}", json={"status": "enabled", "events": None}).json()
    assert back["status"] == "enabled" and back["disabled_reason"] is None and len(back["events"]) == 10
    # Another project sees none of it.
    other = {"Authorization": f"Bearer {other_key}"}
    assert httpx.get(f"{stack.base_url}/webhooks/{made['id']}", headers=other).status_code == 404
    assert httpx.delete(f"{stack.base_url}/webhooks/{made['id']}", headers=other).status_code == 404
    assert made["id"] not in [w["id"] for w in httpx.get(f"{stack.base_url}/webhooks", headers=other).json()["data"]]
    gone = hooks.delete(f"/webhooks/{made['id']}").json()
    assert gone == {"id": made["id"], "object": "webhook.deleted", "deleted": True}
    missing = hooks.get(f"/webhooks/{made['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"No webhook found with id '{made['id']}'."
    hooks.delete(f"/webhooks/{second['id']}")


@pytest.mark.parametrize(("body", "param"), [
    ({"url": "http://10.0.0.1/in"}, "url"),  # private
    ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),  # the cloud's metadata service
    ({"url": "http://[::1]:8080/in"}, "url"),  # loopback, but not in the allowed 127.0.0.0/8
    ({"url": "http://[::ffff:10.0.0.1]/in"}, "url"),  # IPv4 hidden in IPv6
    ({"url": "ftp://example.com/in"}, "url"),
    ({"url": "http://no-such-host.invalid/in"}, "url"),
    ({"url": "https://example.com/in", "events": ["thread.run.exploded"]}, "events[0]"),
    ({"url": "https://example.com/in", "events": []}, "events"),
    ({"events": ["thread.run.completed"]}, "url"),
    ({"url": "https://example.com/in", "secret": "mine"}, "secret"),
])
def test_bad_endpoints_are_refused(hooks: httpx.Client, body: dict[str, Any], param: str) -> None:
    r = hooks.post("/webhooks", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error" and err["message"]


def test_private_url_refused_on_update_too(hooks: httpx.Client, receiver: Receiver) -> None:
    made = create(hooks, receiver.url("/ok/update"))
    r = hooks.post(f"/webhooks/{made['id']}", json={"url": "http://192.168.1.10/hook"})
    assert r.status_code == 400 and "private" in r.json()["error"]["message"]
    assert hooks.get(f"/webhooks/{made['id']}").json()["url"] == made["url"]
    hooks.delete(f"/webhooks/{made['id']}")


def test_run_events_are_delivered_signed(hooks: httpx.Client, receiver: Receiver, fresh_client: openai.OpenAI,
                                         model: ScriptedModel) -> None:
    path = f"/ok/{tag()}"
    made = create(hooks, receiver.url(path), events=["thread.run.requires_action", "thread.run.completed"])
    word = tag()
    model.script(word, {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
                 {"text": "Sunny in Paris."})
    assistant = fresh_client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread = fresh_client.beta.threads.create(messages=[{"role": "user", "content": word}])
    run = fresh_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                         poll_interval_ms=50)
    assert run.status == "requires_action"
    [first] = receiver.wait(path, 1, timeout=15)
    event = verified(fresh_client, first, made["secret"])
    assert event.type == "thread.run.requires_action" and event.object == "event" and event.id.startswith("evt_")
    assert event.data.id == run.id and event.data.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    assert first.body.count(call.id.encode()) == 1  # the run as the API renders it, required_action included
    assert first.headers["content-type"] == "application/json" and first.headers["webhook-id"].startswith("whd_")
    done = fresh_client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
        poll_interval_ms=50)
    assert done.status == "completed"
    first, second = receiver.wait(path, 2, timeout=15)
    event = verified(fresh_client, second, made["secret"])
    assert event.type == "thread.run.completed" and event.data.id == run.id
    assert event.data.status == "completed" and event.data.completed_at
    assert second.headers["webhook-id"] != first.headers["webhook-id"]
    time.sleep(1)
    assert len(receiver.seen(path)) == 2  # nothing else: queued/in_progress announce no event
    listed = deliveries(hooks, made["id"])
    assert [d["event_type"] for d in listed] == ["thread.run.completed", "thread.run.requires_action"]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 and d["last_response_status"] == 200
               for d in listed)
    assert listed[0]["id"] == second.headers["webhook-id"] and listed[0]["object"] == "webhook.delivery"
    hooks.delete(f"/webhooks/{made['id']}")


def test_a_failing_receiver_gets_the_same_delivery_again_signed_afresh(
        hooks: httpx.Client, receiver: Receiver, fresh_client: openai.OpenAI, model: ScriptedModel) -> None:
    path = f"/flaky/{tag()}"
    made = create(hooks, receiver.url(path), events=["thread.run.completed"])
    run = finished_run(fresh_client, model)
    first, second = receiver.wait(path, 2, timeout=30)
    assert second.at - first.at <= 10  # the first retry comes within 10 s
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.body == second.body
    for got in (first, second):
        assert verified(fresh_client, got, made["secret"]).data.id == run.id
    [d] = wait_for(lambda: [d for d in deliveries(hooks, made["id"]) if d["status"] == "delivered"], 10,
                   "the delivery recorded as delivered")
    assert d["attempts"] == 2 and d["last_response_status"] == 200 and d["next_attempt_at"] is None
    assert hooks.get(f"/webhooks/{made['id']}").json()["status"] == "enabled"
    hooks.delete(f"/webhooks/{made['id']}")


def test_an_endpoint_failing_for_long_is_disabled_and_says_why(
        hooks: httpx.Client, receiver: Receiver, fresh_client: openai.OpenAI, model: ScriptedModel) -> None:
    """The test stack disables an endpoint after 4 s of failures (the default is 3 days)."""
    path = f"/fail/{tag()}"
    made = create(hooks, receiver.url(path), events=["thread.run.completed"])
    finished_run(fresh_client, model)
    endpoint = wait_for(lambda: (e := hooks.get(f"/webhooks/{made['id']}").json())["status"] == "disabled" and e,
                        40, "the endpoint disabled")
    assert "every delivery attempt failed" in endpoint["disabled_reason"]
    assert "HTTP 500: receiver is down" in endpoint["disabled_reason"]
    [d] = deliveries(hooks, made["id"])
    assert d["status"] == "pending" and d["attempts"] >= 2 and d["last_response_status"] == 500
    assert d["last_error"] == "HTTP 500: receiver is down"
    attempts = len(receiver.seen(path))
    finished_run(fresh_client, model)  # a disabled endpoint gets no new events, nor retries
    time.sleep(8)
    assert len(receiver.seen(path)) == attempts and len(deliveries(hooks, made["id"])) == 1
    enabled = hooks.post(f"/webhooks/{made['id']}", json={"status": "enabled"}).json()
    assert enabled["status"] == "enabled" and enabled["disabled_reason"] is None
    hooks.delete(f"/webhooks/{made['id']}")


def test_a_delivery_worker_killed_mid_delivery_loses_nothing(
        stack: Stack, hooks: httpx.Client, receiver: Receiver, fresh_client: openai.OpenAI,
        model: ScriptedModel) -> None:
    path = f"/hang/{tag()}"
    made = create(hooks, receiver.url(path), events=["thread.run.completed"])
    run = finished_run(fresh_client, model)
    [first] = receiver.wait(path, 1, timeout=15)  # the receiver holds this request: the attempt is in flight
    children = stack.children("webhook-worker")
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    receiver.release.set()
    # The dead attempt's lease (timeout + 20 s) runs out, and the beat's sweep sends the delivery again.
    first, second = receiver.wait(path, 2, timeout=90)
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert verified(fresh_client, second, made["secret"]).data.id == run.id
    [d] = wait_for(lambda: [d for d in deliveries(hooks, made["id"]) if d["status"] == "delivered"], 15,
                   "the delivery recorded as delivered")
    assert d["attempts"] == 2
    time.sleep(3)
    assert len(receiver.seen(path)) == 2  # delivered: not sent again
    hooks.delete(f"/webhooks/{made['id']}")


def test_vector_store_file_and_batch_events(hooks: httpx.Client, receiver: Receiver,
                                            fresh_client: openai.OpenAI) -> None:
    path = f"/ok/{tag()}"
    made = create(hooks, receiver.url(path), events=["vector_store.file.completed", "vector_store.file.failed",
                                                     "vector_store.file_batch.completed"])
    good = fresh_client.files.create(file=("notes.md", io.BytesIO(b"# Notes\nThe pumps run on Tuesdays.\n")),
                                     purpose="assistants").id
    bad = fresh_client.files.create(file=("blob.bin", io.BytesIO(b"\x00\x01binary")), purpose="assistants").id
    vs = fresh_client.vector_stores.create(name="events")
    batch = fresh_client.vector_stores.file_batches.create_and_poll(vs.id, file_ids=[good, bad], poll_interval_ms=100)
    assert batch.status == "completed"
    got = receiver.wait(path, 3, timeout=30)
    for g in got:
        verified(fresh_client, g, made["secret"])
    by_type = {e["type"]: e["data"] for e in (json.loads(g.body) for g in got)}
    assert set(by_type) == {"vector_store.file.completed", "vector_store.file.failed",
                            "vector_store.file_batch.completed"}
    done, failed = by_type["vector_store.file.completed"], by_type["vector_store.file.failed"]
    assert done == fresh_client.vector_stores.files.retrieve(good, vector_store_id=vs.id).model_dump(
        exclude_unset=True)  # the file as the API renders it
    assert done["status"] == "completed" and done["usage_bytes"] > 0
    assert failed["id"] == bad and failed["status"] == "failed" and failed["last_error"]["code"] == "unsupported_file"
    finished = by_type["vector_store.file_batch.completed"]
    assert finished["id"] == batch.id and finished["status"] == "completed"
    assert finished["object"] == "vector_store.files_batch"
    assert finished["file_counts"] == {"in_progress": 0, "completed": 1, "failed": 1, "cancelled": 0, "total": 2}
    time.sleep(1)
    assert len(receiver.seen(path)) == 3  # one batch event, however the two files raced
    hooks.delete(f"/webhooks/{made['id']}")


def test_operators_see_deliveries_in_metrics_and_the_admin_cli(stack: Stack, hooks: httpx.Client,
                                                               receiver: Receiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = httpx.get(f"{stack.root_url}/metrics").text
    assert "assistants_webhook_deliveries_pending " in metrics
    assert "assistants_webhook_delivery_lag_seconds " in metrics
    assert 'assistants_queue_depth{queue="webhooks"}' in metrics
    project = f"cli-{uuid.uuid4().hex[:8]}"
    stack.new_key(project)
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")  # the CLI reads the stack's settings too
    secret = stack.admin("create-webhook", "--project", project, "--url", receiver.url("/ok/cli"),
                         "--events", "thread.run.failed,thread.run.expired").strip()
    assert secret.startswith("whsec_")
    [line] = [ln for ln in stack.admin("list-webhooks", "--project", project).splitlines() if ln]
    webhook_id, name, status, url, types = line.split("\t")
    assert name == project and status == "enabled" and url == receiver.url("/ok/cli")
    assert types == "thread.run.failed,thread.run.expired"
    assert '"status": "disabled"' in stack.admin("update-webhook", webhook_id, "--disable")
    assert stack.admin("list-deliveries", webhook_id) == ""
    with pytest.raises(RuntimeError, match="private"):
        stack.admin("create-webhook", "--project", project, "--url", "http://169.254.169.254/")
    stack.admin("delete-webhook", webhook_id)
    assert stack.admin("list-webhooks", "--project", project).strip() == ""
