"""What operators see of a worker: its log lines (JSON with the task's run_id/thread_id when LOG_FORMAT=json) and
its Prometheus metrics on METRICS_PORT, gathered across the worker's processes (prometheus_client's multiprocess
mode: the prefork children of the code, ingest and webhook workers; the runs worker is one gevent process, for
which the same mode simply has one process to gather)."""

import os
import shutil
import tempfile
import time
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun, worker_init, worker_process_shutdown

from shared import logs
from shared.config import get_settings

_settings = get_settings()
if _settings.metrics_port:
    # Multiprocess mode is chosen by the directory, which must exist before shared.metrics creates its
    # metrics. Left-overs of an earlier start of this container would be summed in: cleared here
    # (this runs once, in the main process, before a prefork pool forks).
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="assistants-metrics-")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    # prometheus_client may be imported already (Flower's `celery` CLI plugin imports it), having chosen
    # in-process values then: choose again, before our metrics are created.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]

from shared import metrics  # noqa: E402  (after the multiprocess directory is set)

_started: dict[str, float] = {}


@setup_logging.connect
def _logging(loglevel: Any = None, **_: Any) -> None:
    """Our format for Celery's own lines and ours alike (connecting here stops Celery configuring logging)."""
    level = loglevel if isinstance(loglevel, str) else _settings.log_level
    logs.configure(_settings.log_format, level or "INFO")


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    if _settings.metrics_port:
        metrics.serve_multiprocess(_settings.metrics_port)


@worker_process_shutdown.connect
def _child_gone(pid: int | None = None, **_: Any) -> None:
    metrics.child_exited(pid or os.getpid())


@task_prerun.connect
def _task_started(task_id: str | None = None, args: Any = None, **_: Any) -> None:
    logs.clear_ids()
    logs.bind_ids(*(args or ()))
    if task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_done(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    began = _started.pop(task_id or "", None)
    if began is not None and task is not None:
        metrics.TASK_DURATION.labels(task.name, (state or "unknown").lower()).observe(time.perf_counter() - began)
    logs.clear_ids()
