"""Webhook delivery (the `webhooks` queue): one task makes one attempt of one delivery — claim, POST, record.

At least once, nothing lost: a delivery is a row (shared/webhooks/outbox.py) until an attempt records a 2xx. An
attempt first *claims* the row: it bumps `attempts` (the attempt's token) and takes a lease for the longest an
attempt can last; it then POSTs the event, signed afresh, with no database connection held; it records the outcome
only if its token is still current. A worker killed mid-attempt leaves the lease to run out, and the beat's sweep
(every WEBHOOK_SWEEP_SECONDS) sends the delivery again — the receiver may see it twice, with the same
`webhook-id`, which is what receivers deduplicate on. Failures are retried on the backoff of
shared/webhooks/schedule.py: short waits by a delayed task, long ones by the sweep (Postgres keeps the time).

Receivers are reached only at addresses the policy allows, checked as each connection is opened
(`GuardedBackend`): the URL's name is resolved, every address checked, and the socket opened to a checked one.

An attempt's POST ends within WEBHOOK_TIMEOUT_SECONDS in all, whatever the receiver does: httpx's timeouts bound
each read and write, so a receiver dripping its answer a byte at a time would hold an attempt indefinitely, past
its lease, and the sweep would start a second attempt alongside it. So every network operation of an attempt —
name lookup, connect, TLS, each write and read — is given only what is left of the attempt's deadline
(`DeadlineStream`), and the lease (the timeout plus LEASE_MARGIN) outlasts it.
"""

import logging
import ssl
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared import dispatch, metrics
from shared.config import get_settings
from shared.db import sync_engine
from shared.dispatch import Task
from shared.webhooks import addresses, outbox, schedule, signing

log = logging.getLogger("worker.webhooks")

# An attempt's lease is the POST's whole budget (WEBHOOK_TIMEOUT_SECONDS) plus this: room for claiming, signing and
# the clocks of the claiming worker and the sweeping beat. Its POST has ended by then, answered or cut off.
LEASE_MARGIN = 20.0
NUDGE_GRACE = 30.0  # a task sent for a delivery is given this long to run before the sweep sends another
COUNTDOWN_MAX = 300.0  # retries due sooner than this get a delayed task; later ones are the sweep's
ERROR_BODY_BYTES = 512  # of a failing receiver's answer, kept for the operator
USER_AGENT = "assistants-webhooks/1"


# ---- an attempt's deadline ---------------------------------------------------------------------------------------
# When the current attempt's network I/O must have ended (time.monotonic()); None outside an attempt.
_deadline: ContextVar[float | None] = ContextVar("webhook_deadline", default=None)


@contextmanager
def deadline_in(seconds: float) -> Iterator[float]:
    """Network operations inside get only what is left of `seconds` from now."""
    at = time.monotonic() + seconds
    token = _deadline.set(at)
    try:
        yield at
    finally:
        _deadline.reset(token)


def _within(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout`, cut to what is left of the attempt's deadline; raises `expired` once nothing is left."""
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the attempt's time is up")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the current attempt's deadline (read when the operation starts,
    so a pooled connection serves each attempt with that attempt's deadline)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _within(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _within(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname,
                                                   _within(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


# Name lookups (getaddrinfo, which takes no timeout) run here so that an attempt can stop waiting for one. A lookup
# left behind finishes on its own, within the resolver's own timeouts.
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def _resolve(resolver: addresses.Resolver, host: str, port: int) -> list[str]:
    wait = _within(None, httpcore.ConnectTimeout)
    if wait is None:
        return resolver(host, port)
    try:
        return _lookups.submit(resolver, host, port).result(timeout=wait)
    except FutureTimeout:
        raise httpcore.ConnectTimeout(f"looking up '{host}' took too long") from None


# ---- the network: only addresses the policy allows ---------------------------------------------------------------
class RefusedAddress(httpcore.ConnectError):
    """The receiver's name resolves to an address webhooks may not reach."""


class GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, policy: addresses.Policy, resolver: addresses.Resolver = addresses.resolve) -> None:
        self.policy, self.resolver, self.inner = policy, resolver, httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            found = _resolve(self.resolver, host, port)
        except (OSError, UnicodeError) as e:
            raise httpcore.ConnectError(f"could not resolve '{host}': {e}") from e
        refused = self.policy.refused(found)
        if refused is not None:
            raise RefusedAddress(f"refused: '{host}' resolves to {refused}, which webhooks may not reach")
        error: Exception = httpcore.ConnectError(f"'{host}' has no address")
        for address in found:  # the checked addresses, and only those: a second lookup could answer otherwise
            try:
                return DeadlineStream(self.inner.connect_tcp(address, port, _within(timeout, httpcore.ConnectTimeout),
                                                             local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise RefusedAddress("refused: webhooks are not delivered over unix sockets")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool rebuilt on the guarded backend (httpx exposes no other way to
    choose the network backend); no proxies from the environment, which would bypass the check."""

    def __init__(self, policy: addresses.Policy, resolver: addresses.Resolver = addresses.resolve) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                             max_connections=20, max_keepalive_connections=10,
                                             keepalive_expiry=30.0,
                                             network_backend=GuardedBackend(policy, resolver))


_client: httpx.Client | None = None


def client() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(transport=GuardedTransport(addresses.Policy.from_settings()), trust_env=False,
                               follow_redirects=False, timeout=httpx.Timeout(get_settings().webhook_timeout_seconds),
                               headers={"User-Agent": USER_AGENT})
    return _client


@dataclass
class Result:
    status: int | None  # the receiver's HTTP status; None if none came
    error: str | None  # why the attempt failed; None if it succeeded
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def post(url: str, body: bytes, headers: dict[str, str], http: httpx.Client | None = None,
         timeout: float | None = None) -> Result:
    """One POST, over within `timeout` (WEBHOOK_TIMEOUT_SECONDS) in all; any 2xx is a success. Redirects are not
    followed (a 3xx is a failure: the URL is what was checked and agreed), and no more of the answer is read than
    an error message needs."""
    budget = get_settings().webhook_timeout_seconds if timeout is None else timeout
    try:
        # The request's own timeout covers waiting for a pooled connection; the deadline, everything after.
        with deadline_in(budget), (http or client()).stream(
                "POST", url, content=body, headers={**headers, "Content-Type": "application/json"},
                timeout=budget) as resp:
            if 200 <= resp.status_code < 300:
                return Result(resp.status_code, None)
            head = b""
            try:
                for piece in resp.iter_raw():
                    head += piece
                    if len(head) >= ERROR_BODY_BYTES:
                        break
            except httpx.TimeoutException:
                pass  # the status is the answer; its message is cut where the time ran out
            detail = head[:ERROR_BODY_BYTES].decode("utf-8", "replace").strip()
            return Result(resp.status_code, f"HTTP {resp.status_code}" + (f": {detail}" if detail else ""))
    except httpx.TimeoutException:
        return Result(None, "timed out")
    except httpx.HTTPError as e:
        refused = isinstance(e.__cause__, RefusedAddress) or isinstance(e.__context__, RefusedAddress)
        return Result(None, str(e) or e.__class__.__name__, refused=refused)


# ---- one attempt -------------------------------------------------------------------------------------------------
@dataclass
class Claim:
    delivery_id: str
    attempts: int
    endpoint_id: str
    url: str
    secret: str
    payload: str


_WAIT_FOR_PRODUCER = text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:k, 0))")
_CLAIM = text("""
    UPDATE webhook_delivery d SET attempts = d.attempts + 1, lease_until = :lease, task_due_at = NULL,
                                  last_attempt_at = CAST(:now AS integer)
    FROM webhook_endpoint e, webhook_event ev
    WHERE d.id = :id AND d.status = 'pending' AND d.next_attempt_at <= :now + 1
      AND COALESCE(d.lease_until, 0) < :now
      AND e.id = d.endpoint_id AND e.status = 'enabled' AND ev.id = d.event_id
    RETURNING d.attempts, e.id AS endpoint_id, e.url, e.secret, ev.payload""")


def attempt(delivery_id: str, wait_for_event: str | None = None) -> str:
    """Make one attempt if the delivery is due and free; returns what happened (for logs and tests)."""
    claim = _claim(delivery_id, wait_for_event)
    if claim is None:
        return "skipped"
    began = time.monotonic()
    body = claim.payload.encode()
    result = post(claim.url, body, signing.headers(claim.secret, claim.delivery_id, int(time.time()), body))
    metrics.WEBHOOK_ATTEMPT_DURATION.observe(time.monotonic() - began)
    outcome = "delivered" if result.ok else "refused" if result.refused else "failed"
    metrics.WEBHOOK_ATTEMPTS.labels(outcome).inc()
    if not result.ok:
        log.info("webhook %s to %s failed (attempt %d): %s", delivery_id, claim.url, claim.attempts, result.error)
    return _record(claim, result) or outcome


def _claim(delivery_id: str, wait_for_event: str | None) -> Claim | None:
    with sync_engine().connect() as conn:
        if wait_for_event is not None:
            # Sent by a transaction that had not committed yet: wait for it to end (see shared/webhooks/outbox.py).
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))
            try:
                conn.execute(_WAIT_FOR_PRODUCER, {"k": outbox.lock_key(wait_for_event)})
            except OperationalError:
                conn.rollback()
                return None  # still not committed after 30 s: the sweep takes over
        t = time.time()
        row = conn.execute(_CLAIM, {"id": delivery_id, "now": t,
                                    "lease": t + get_settings().webhook_timeout_seconds + LEASE_MARGIN}).first()
        conn.commit()
    if row is None:
        return None
    return Claim(delivery_id, row.attempts, row.endpoint_id, row.url, row.secret, row.payload)


_DELIVERED = text("""
    UPDATE webhook_delivery SET status = 'delivered', delivered_at = CAST(:now AS integer), lease_until = NULL,
                                last_response_status = :status, last_error = NULL
    WHERE id = :id AND attempts = :attempts AND status = 'pending'""")
_FAILED = text("""
    UPDATE webhook_delivery SET status = :status, next_attempt_at = COALESCE(:retry_at, next_attempt_at),
                                lease_until = NULL, task_due_at = :task_due_at,
                                last_response_status = :code, last_error = :error
    WHERE id = :id AND attempts = :attempts AND status = 'pending'""")


def _record(claim: Claim, result: Result) -> str | None:
    """Write the attempt's outcome (if no later attempt took over meanwhile) and the endpoint's health."""
    settings = get_settings()
    t = time.time()
    retry_task: float | None = None
    with sync_engine().connect() as conn:
        if result.ok:
            done = conn.execute(_DELIVERED, {"id": claim.delivery_id, "attempts": claim.attempts, "now": t,
                                             "status": result.status}).rowcount
            conn.execute(text("UPDATE webhook_endpoint SET failing_since = NULL "
                              "WHERE id = :e AND failing_since IS NOT NULL"), {"e": claim.endpoint_id})
            conn.commit()
            return None if done else "overtaken"
        endpoint = conn.execute(text("SELECT status, failing_since FROM webhook_endpoint WHERE id = :e FOR UPDATE"),
                                {"e": claim.endpoint_id}).first()
        if endpoint is None:
            conn.rollback()
            return "endpoint deleted"
        decision = schedule.after_failure(attempts=claim.attempts, at=t,
                                          waits=schedule.parse(settings.webhook_retry_schedule),
                                          failing_since=endpoint.failing_since,
                                          disable_after=settings.webhook_disable_after_seconds)
        error = result.error or "failed"
        if decision.retry_at is None:
            error += f" (gave up after {claim.attempts} attempts)"
        elif decision.retry_at - t <= COUNTDOWN_MAX and not decision.disable:
            retry_task = decision.retry_at
        done = conn.execute(_FAILED, {
            "id": claim.delivery_id, "attempts": claim.attempts, "retry_at": decision.retry_at,
            "status": "pending" if decision.retry_at is not None else "failed", "task_due_at": retry_task,
            "code": result.status, "error": error[:2000]}).rowcount
        conn.execute(text("UPDATE webhook_endpoint SET failing_since = COALESCE(failing_since, :now) WHERE id = :e"),
                     {"e": claim.endpoint_id, "now": t})
        if decision.disable and endpoint.status == "enabled":
            conn.execute(text("UPDATE webhook_endpoint SET status = 'disabled', disabled_reason = :why WHERE id = :e"),
                         {"e": claim.endpoint_id, "why": disabled_reason(endpoint.failing_since or t, t, error)})
            metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()
            log.warning("webhook endpoint %s disabled: failing since %s", claim.endpoint_id,
                        _iso(endpoint.failing_since or t))
        conn.commit()
    if decision.retry_at is None:
        metrics.WEBHOOK_GAVE_UP.inc()
    if done and retry_task is not None:
        _send(claim.delivery_id, countdown=max(0.0, retry_task - time.time()))
    return None if done else "overtaken"


def disabled_reason(since: float, at: float, last_error: str) -> str:
    hours = (at - since) / 3600
    span = f"{hours:.1f} hours" if hours >= 1 else f"{int(at - since)} seconds"
    return (f"Disabled automatically at {_iso(at)}: every delivery attempt failed for {span} (since "
            f"{_iso(since)}); the last one: {last_error[:300]}. Enable it again once the receiver is fixed.")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _send(delivery_id: str, countdown: float = 0.0) -> None:
    dispatch.send(Task.WEBHOOK_DELIVER, delivery_id, None, countdown=countdown)


# ---- the beat's sweep ----------------------------------------------------------------------------------------------
_DUE = text("""
    UPDATE webhook_delivery d SET task_due_at = :now
    WHERE d.id IN (
        SELECT d2.id FROM webhook_delivery d2 JOIN webhook_endpoint e ON e.id = d2.endpoint_id AND e.status = 'enabled'
        WHERE d2.status = 'pending' AND d2.next_attempt_at <= :now AND COALESCE(d2.lease_until, 0) < :now
          AND COALESCE(d2.task_due_at, 0) < :now - :grace
        ORDER BY d2.next_attempt_at LIMIT 500 FOR UPDATE OF d2 SKIP LOCKED)
    RETURNING d.id""")
_ABANDON = text("""
    UPDATE webhook_delivery SET status = 'failed', lease_until = NULL,
        last_error = COALESCE(last_error || '; ', '') || 'abandoned: not delivered within the retry window'
    WHERE status = 'pending' AND created_at < :cutoff AND COALESCE(lease_until, 0) < :now""")
_FORGET = text("""
    DELETE FROM webhook_event ev
    WHERE ev.id IN (SELECT id FROM webhook_event WHERE created_at < :old ORDER BY created_at LIMIT 1000)
      AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event_id = ev.id AND d.status = 'pending')""")


def sweep() -> int:
    """Send every due delivery nobody is on (retries, lost nudges, attempts whose worker died); abandon the ones
    past their retry window (an endpoint disabled meanwhile); forget old events. Returns how many were sent."""
    settings = get_settings()
    t = time.time()
    window = schedule.deadline(0, schedule.parse(settings.webhook_retry_schedule))
    with sync_engine().connect() as conn:
        conn.execute(_ABANDON, {"cutoff": int(t - window), "now": t})
        due = [r[0] for r in conn.execute(_DUE, {"now": t, "grace": NUDGE_GRACE})]
        conn.execute(_FORGET, {"old": int(t - settings.webhook_retention_days * 86400)})
        conn.commit()
    for delivery_id in due:
        _send(delivery_id)
    return len(due)
