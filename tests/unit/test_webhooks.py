"""Webhooks without a stack: signatures as the official SDK verifies them, which receivers may be reached (and that
the check holds at connection time), and the retry and disable policy."""

import ipaddress
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from shared.webhooks import addresses, events, outbox, schedule, signing
from worker.webhook_delivery import GuardedTransport, disabled_reason, post

SDK = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")


def event_body() -> bytes:
    return outbox.payload("evt_1", "thread.run.completed", 1_700_000_000,
                          {"id": "run_1", "object": "thread.run", "status": "completed", "note": "café ☕"}).encode()


# ---- signing -------------------------------------------------------------------------------------------------------
def test_the_sdk_verifies_our_signature_and_unwraps_the_event() -> None:
    secret, body = signing.new_secret(), event_body()
    headers = signing.headers(secret, "whd_abc", int(time.time()), body)
    SDK.webhooks.verify_signature(body, headers, secret=secret)
    event = SDK.webhooks.unwrap(body, headers, secret=secret)
    assert event.type == "thread.run.completed" and event.id == "evt_1"  # type: ignore[comparison-overlap]
    assert json.loads(body)["data"]["note"] == "café ☕"


def test_the_sdk_refuses_a_tampered_body_a_wrong_secret_and_an_old_timestamp() -> None:
    secret, body = signing.new_secret(), event_body()
    headers = signing.headers(secret, "whd_abc", int(time.time()), body)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        SDK.webhooks.verify_signature(body.replace(b"completed", b"failed"), headers, secret=secret)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        SDK.webhooks.verify_signature(body, headers, secret=signing.new_secret())
    stale = signing.headers(secret, "whd_abc", int(time.time()) - 600, body)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        SDK.webhooks.verify_signature(body, stale, secret=secret)


def test_each_attempt_is_signed_afresh_under_the_same_id() -> None:
    secret, body = signing.new_secret(), event_body()
    first = signing.headers(secret, "whd_abc", 1_000, body)
    later = signing.headers(secret, "whd_abc", 4_600, body)
    assert first["webhook-id"] == later["webhook-id"]
    assert first["webhook-signature"] != later["webhook-signature"]
    assert signing.new_secret() != signing.new_secret() and signing.new_secret().startswith("whsec_")


def test_event_names() -> None:
    assert events.for_run_status("completed") == "thread.run.completed"
    assert events.for_run_status("requires_action") == "thread.run.requires_action"
    assert events.for_run_status("in_progress") is None and events.for_run_status("cancelling") is None
    assert len(set(events.ALL)) == len(events.ALL) == 10


# ---- which receivers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "::"])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not addresses.is_public(ipaddress.ip_address(address))
    assert not addresses.Policy().allows(ipaddress.ip_address(address))
    assert addresses.Policy(allow_private=True).allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert addresses.Policy().allows(ipaddress.ip_address(address))


def test_allowed_networks_open_only_themselves() -> None:
    policy = addresses.Policy(allowed_networks=addresses.parse_networks("127.0.0.0/8, 10.1.2.0/24"))
    assert policy.allows(ipaddress.ip_address("127.0.0.1")) and policy.allows(ipaddress.ip_address("10.1.2.9"))
    assert policy.allows(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.allows(ipaddress.ip_address("10.1.3.1"))
    assert not policy.allows(ipaddress.ip_address("169.254.169.254"))


def fake_dns(table: dict[str, list[str]]) -> addresses.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]
    return resolve


def test_check_url() -> None:
    dns = fake_dns({"hooks.example.com": ["93.184.216.34"], "sneaky.example.com": ["93.184.216.34", "10.0.0.5"],
                    "localhost": ["127.0.0.1", "::1"]})
    strict = addresses.Policy()
    assert addresses.check_url("https://hooks.example.com/in", strict, dns) is None
    assert addresses.check_url("http://93.184.216.34:8080/x", strict, dns) is None
    for url in ("http://localhost:9000/", "http://sneaky.example.com/", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/", "http://[::ffff:7f00:1]/", "http://10.0.0.1/"):
        problem = addresses.check_url(url, strict, dns)
        assert problem is not None and "private" in problem, url
    assert "resolved" in str(addresses.check_url("http://nowhere.invalid/", strict, dns))
    assert "http" in str(addresses.check_url("ftp://hooks.example.com/", strict, dns))
    assert "host" in str(addresses.check_url("http:///path", strict, dns))
    assert addresses.check_url("http://localhost:9000/", addresses.Policy(allow_private=True), dns) is None


# ---- the check holds when connecting (DNS rebinding) ---------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"host": self.headers["Host"], "body": body, "headers": dict(self.headers)})
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()


def test_a_name_rebound_to_a_private_address_is_refused_at_connection(
        receiver: tuple[int, list[dict[str, Any]]]) -> None:
    port, seen = receiver
    # Public when the endpoint was saved…
    assert addresses.check_url(f"http://rebind.example.com:{port}/", addresses.Policy(),
                               fake_dns({"rebind.example.com": ["93.184.216.34"]})) is None
    # …and loopback now, where a server listens: nothing may reach it.
    http = httpx.Client(transport=GuardedTransport(addresses.Policy(),
                                                   fake_dns({"rebind.example.com": ["127.0.0.1"]})))
    result = post(f"http://rebind.example.com:{port}/", b"{}", {}, http)
    assert not result.ok and result.refused and "127.0.0.1" in str(result.error)
    assert seen == []


def test_an_allowed_name_is_reached_at_the_checked_address_with_its_own_host_header(
        receiver: tuple[int, list[dict[str, Any]]]) -> None:
    port, seen = receiver
    policy = addresses.Policy(allowed_networks=addresses.parse_networks("127.0.0.0/8"))
    http = httpx.Client(transport=GuardedTransport(policy, fake_dns({"hooks.internal": ["127.0.0.1"]})))
    result = post(f"http://hooks.internal:{port}/in", b'{"a":1}', {"webhook-id": "whd_1"}, http)
    assert result.ok and result.status == 204
    assert seen[0]["host"] == f"hooks.internal:{port}" and seen[0]["body"] == b'{"a":1}'
    assert seen[0]["headers"]["webhook-id"] == "whd_1"


def test_no_answer_is_a_failure_not_an_exception() -> None:
    http = httpx.Client(transport=GuardedTransport(addresses.Policy(allow_private=True)))
    result = post("http://127.0.0.1:9/", b"{}", {}, http)  # the discard port: nothing listens
    assert not result.ok and result.status is None and not result.refused


# ---- an attempt ends in time, whatever the receiver does -------------------------------------------------------------
def drip_server(opening: bytes, seconds: float = 20.0) -> tuple[int, threading.Event]:
    """A receiver that reads a request, sends `opening`, then one more byte every 0.2 s for `seconds`: never
    silent for as long as a read timeout, never done. Returns its port and an event that stops it."""
    import socket

    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(opening)
            until = time.monotonic() + seconds
            while time.monotonic() < until and not stop.wait(0.2):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return  # the client hung up

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def timed_post(url: str, http: httpx.Client, timeout: float) -> tuple[Any, float]:
    began = time.monotonic()
    result = post(url, b"{}", {}, http, timeout=timeout)
    return result, time.monotonic() - began


def test_a_receiver_dripping_its_headers_is_cut_off_at_the_attempts_deadline() -> None:
    # Per read, httpx's timeout (1 s here) would never fire: a byte comes every 0.2 s for 20 s.
    port, stop = drip_server(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    http = httpx.Client(transport=GuardedTransport(addresses.Policy(allow_private=True)))
    try:
        result, took = timed_post(f"http://127.0.0.1:{port}/", http, timeout=1.0)
    finally:
        stop.set()
    assert not result.ok and result.status is None and result.error == "timed out"
    assert 0.9 <= took < 4.0, took


def test_a_failing_receiver_dripping_its_message_keeps_its_status_and_ends_in_time() -> None:
    port, stop = drip_server(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000\r\n\r\nboom")
    http = httpx.Client(transport=GuardedTransport(addresses.Policy(allow_private=True)))
    try:
        result, took = timed_post(f"http://127.0.0.1:{port}/", http, timeout=1.0)
    finally:
        stop.set()
    assert result.status == 500 and str(result.error).startswith("HTTP 500: boom")
    assert 0.9 <= took < 4.0, took


def test_a_slow_name_lookup_counts_against_the_attempt() -> None:
    release = threading.Event()

    def slow_dns(host: str, port: int) -> list[str]:
        release.wait(20)
        return ["127.0.0.1"]

    http = httpx.Client(transport=GuardedTransport(addresses.Policy(allow_private=True), slow_dns))
    try:
        result, took = timed_post("http://slow.example.com:9/", http, timeout=1.0)
    finally:
        release.set()
    assert not result.ok and result.error == "timed out" and not result.refused
    assert 0.9 <= took < 4.0, took


def test_a_pooled_connection_serves_the_next_attempt_with_that_attempts_own_deadline() -> None:
    connections: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the second attempt reuses the first one's connection

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def do_POST(self) -> None:
            # A short error message, read to its end: the connection goes back to the pool.
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"busy")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    http = httpx.Client(transport=GuardedTransport(addresses.Policy(allow_private=True)))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        first, _ = timed_post(url, http, timeout=0.5)
        time.sleep(0.7)  # past the first attempt's deadline
        second, _ = timed_post(url, http, timeout=0.5)
    finally:
        server.shutdown()
    assert first.error == second.error == "HTTP 503: busy", (first, second)
    assert len(connections) == 1


# ---- retries and disabling -------------------------------------------------------------------------------------------
def test_retries_back_off_for_about_a_day_then_stop() -> None:
    waits = schedule.parse("5,30,120,600,1800,3600,7200,14400,28800,28800")
    rng = random.Random(7)
    at, retries = 0.0, []
    for attempts in range(1, 20):
        outcome = schedule.after_failure(attempts=attempts, at=at, waits=waits, failing_since=0.0,
                                         disable_after=10**9, rng=rng)
        if outcome.retry_at is None:
            break
        retries.append(outcome.retry_at - at)
        at = outcome.retry_at
    assert len(retries) == 10  # eleven attempts in all
    assert retries[0] <= 10  # the first retry within 10 s
    assert all(b > a for a, b in itertools.pairwise(retries[:9]))  # growing (the last two are equal)
    assert 20 * 3600 <= at <= 28 * 3600  # about a day
    assert schedule.deadline(0, waits) > at


def test_an_endpoint_failing_for_long_is_disabled() -> None:
    waits = (5.0,)
    assert not schedule.after_failure(attempts=1, at=100, waits=waits, failing_since=None, disable_after=60).disable
    assert not schedule.after_failure(attempts=1, at=150, waits=waits, failing_since=100, disable_after=60).disable
    late = schedule.after_failure(attempts=1, at=160, waits=waits, failing_since=100, disable_after=60)
    assert late.disable and late.retry_at is not None
    why = disabled_reason(100, 160, "HTTP 500: boom")
    assert "60 seconds" in why and "HTTP 500: boom" in why and "Enable it again" in why
    with pytest.raises(ValueError):
        schedule.parse("5,0")
