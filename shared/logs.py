"""Logging for every process: plain text on a terminal, one JSON object per line in a cluster (LOG_FORMAT=json),
where a log shipper indexes it. Each line carries the run and thread it is about, taken from context variables
that the API (per request) and the workers (per task) set, so one run's story can be pulled out of all replicas.
"""

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)
thread_id_var: ContextVar[str | None] = ContextVar("thread_id", default=None)

_IDS = re.compile(r"\b(run|thread)_[A-Za-z0-9]+")
# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into the JSON line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def bind_ids(*values: Any) -> None:
    """Set run_id / thread_id from whatever ids appear in `values` (task arguments, a request path)."""
    for value in values:
        if not isinstance(value, str):
            continue
        for m in _IDS.finditer(value):
            (run_id_var if m.group(1) == "run" else thread_id_var).set(m.group(0))


def clear_ids() -> None:
    run_id_var.set(None)
    thread_id_var.set(None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        run_id, thread_id = run_id_var.get(), thread_id_var.get()
        if run_id:
            line["run_id"] = run_id
        if thread_id:
            line["thread_id"] = thread_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(fmt: str, level: str = "INFO") -> None:
    """Point the root logger (and the servers' own loggers, which do not propagate) at one formatted stream."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "celery", "celery.task", "celery.worker"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Requests are logged by the API's own access log (ACCESS_LOG, with the route and duration). uvicorn logs them
    # too whenever its access logger has a handler, --no-access-log or not: reaching the root's made every request
    # logged twice.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    # The HTTP client logs every request at INFO: a line per model call, saying less than the metrics do (kept
    # at DEBUG).
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
