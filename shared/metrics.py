"""Prometheus metrics. Each process exposes its own: an API replica at /metrics (HTTP latency, plus gauges read
from Postgres and Redis at scrape time), a worker on METRICS_PORT (task and model figures, gathered from all its
prefork children through prometheus_client's multiprocess mode, whose directory PROMETHEUS_MULTIPROC_DIR must be
set before this module creates its metrics — worker.observability sees to that)."""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

# Latency buckets from sub-millisecond API calls to minute-long model answers and sandbox runs.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

HTTP_DURATION = Histogram("assistants_http_request_duration_seconds",
                          "HTTP requests by route template, method and status (streams: until their end).",
                          ["method", "route", "status"], buckets=_FAST)
TASK_DURATION = Histogram("assistants_task_duration_seconds",
                          "Celery tasks: one run step (model call), one tool execution, one file ingestion.",
                          ["task", "outcome"], buckets=_SLOW)
MODEL_DURATION = Histogram("assistants_model_request_duration_seconds",
                           "Chat Completions calls to the upstream model, streamed to the end.",
                           ["model", "outcome"], buckets=_SLOW)
MODEL_TOKENS = Counter("assistants_model_tokens_total",
                       "Tokens of upstream model calls, by kind: as the upstream reported them, or estimated when it "
                       "reported none (those calls are counted in assistants_model_usage_estimated_total).",
                       ["model", "kind"])
MODEL_RESENDS = Counter("assistants_model_resends_total",
                        "Requests sent again at once because the pooled connection they met had been closed by the "
                        "upstream (llama-server closes it after every streamed answer); not failed calls.",
                        ["model"])
MODEL_USAGE_ESTIMATED = Counter("assistants_model_usage_estimated_total",
                                "Upstream model calls that reported no token usage, whose usage was estimated.",
                                ["model"])
RUNS_FINISHED = Counter("assistants_runs_finished_total",
                        "Runs that reached a terminal status, counted by the worker that put them there.",
                        ["status"])
SANDBOX_WARM = Gauge("assistants_sandbox_warm_containers",
                     "Warm code_interpreter containers waiting in the pool (as last seen by the reaper).",
                     multiprocess_mode="mostrecent")


def serve_multiprocess(port: int) -> None:
    """Serve the metrics of this process and all its children (a Celery worker's main process calls this)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, registry=registry)


def child_exited(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
WEBHOOK_ATTEMPTS = Counter("assistants_webhook_attempts_total",
                           "Webhook delivery attempts by outcome: delivered (2xx), failed (an error answer, a timeout, "
                           "no connection), refused (the receiver's address is not allowed).", ["outcome"])
WEBHOOK_ATTEMPT_DURATION = Histogram("assistants_webhook_attempt_duration_seconds",
                                     "Webhook delivery attempts, from connecting to the receiver's answer.",
                                     buckets=_FAST)
WEBHOOK_GAVE_UP = Counter("assistants_webhook_deliveries_abandoned_total",
                          "Webhook deliveries given up after their last retry.")
WEBHOOK_ENDPOINTS_DISABLED = Counter("assistants_webhook_endpoints_disabled_total",
                                     "Webhook endpoints disabled for failing too long.")
