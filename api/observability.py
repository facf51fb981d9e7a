"""The API's side of operations: a metrics/logging ASGI middleware (route-template latency, run/thread ids bound
to the request's log lines, an optional access log) and GET /metrics, whose gauges — runs by active status,
queue depth, live sandbox sessions, pending webhook deliveries — are read from Postgres and Redis when Prometheus
scrapes."""

import logging
import time
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.dispatch import redis_client
from sandbox.pool import slots_key
from shared import logs, metrics
from shared.config import get_settings
from shared.db import async_engine
from shared.runstate import ACTIVE
from worker.queues import Queue

access = logging.getLogger("api.access")
API_PREFIX = "/v1"

RUNS = Gauge("assistants_runs", "Runs in each active status (read from Postgres at scrape time).", ["status"])
QUEUE_DEPTH = Gauge("assistants_queue_depth", "Tasks waiting in each Celery queue (Redis list length).", ["queue"])
SANDBOX_SESSIONS = Gauge("assistants_sandbox_sessions", "Live code_interpreter sessions (slots held).")
WEBHOOKS_PENDING = Gauge("assistants_webhook_deliveries_pending",
                         "Webhook deliveries not yet delivered nor given up (read from Postgres at scrape time).")
WEBHOOKS_LAG = Gauge("assistants_webhook_delivery_lag_seconds",
                     "How long the most overdue pending webhook delivery has been due (0: none is late).")
router = APIRouter(include_in_schema=False)


class ObservabilityMiddleware:
    """Pure ASGI (no per-request task or body buffering, so streams pass straight through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.access_log = get_settings().access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        logs.clear_ids()
        logs.bind_ids(scope["path"])

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - began
            route = _template(scope)
            metrics.HTTP_DURATION.labels(scope["method"], route, str(status)).observe(elapsed)
            if self.access_log:
                access.info("%s %s %d", scope["method"], scope["path"], status,
                            extra={"route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)})


def _template(scope: Scope) -> str:
    """The matched route's path template. FastAPI keeps an included router's routes relative to its prefix, and
    every versioned route sits under /v1, so that prefix is put back."""
    path = getattr(scope.get("route"), "path", None)
    if path is None:
        return "unmatched"
    if scope["path"].startswith(API_PREFIX + "/") and not path.startswith(API_PREFIX + "/"):
        return f"{API_PREFIX}{path}"
    return str(path)


async def _refresh_gauges() -> None:
    """Best effort: a scrape while Postgres or Redis is down still returns the process's own metrics."""
    try:
        async with async_engine().connect() as conn:
            rows = (await conn.execute(text("SELECT status, count(*) FROM run WHERE status = ANY(:s) GROUP BY status"),
                                       {"s": [s.value for s in ACTIVE]})).all()
            pending, lag = (await conn.execute(text(
                "SELECT count(*), COALESCE(max(:now - next_attempt_at) FILTER (WHERE next_attempt_at <= :now), 0) "
                "FROM webhook_delivery WHERE status = 'pending'"), {"now": time.time()})).one()
        counts = {status: n for status, n in rows}
        for s in ACTIVE:
            RUNS.labels(s.value).set(counts.get(s.value, 0))
        WEBHOOKS_PENDING.set(pending)
        WEBHOOKS_LAG.set(lag)
    except Exception:
        logging.getLogger("api.metrics").warning("runs gauge not refreshed", exc_info=True)
    try:
        pipe: Any = redis_client().pipeline(transaction=False)
        for q in Queue:
            pipe.llen(q.value)
        pipe.zcard(slots_key(get_settings().sandbox_namespace))
        *depths, sessions = await pipe.execute()
        for q, depth in zip(Queue, depths, strict=True):
            QUEUE_DEPTH.labels(q.value).set(depth)
        SANDBOX_SESSIONS.set(sessions)
    except Exception:
        logging.getLogger("api.metrics").warning("queue gauges not refreshed", exc_info=True)


@router.get("/metrics")
async def metrics_endpoint() -> Response:
    await _refresh_gauges()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
