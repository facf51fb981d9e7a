"""JSON log lines carry the run and thread they are about."""

import io
import json
import logging

from shared import logs


def _line(record_logger: logging.Logger, stream: io.StringIO, *args: object, **extra: object) -> dict[str, object]:
    record_logger.info(*args, extra=extra)  # type: ignore[arg-type]
    return json.loads(stream.getvalue().strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_json_lines_carry_bound_ids_and_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False

    logs.clear_ids()
    line = _line(logger, stream, "plain %s", "text")
    assert line["msg"] == "plain text" and line["level"] == "info" and "run_id" not in line

    logs.bind_ids("/v1/threads/thread_abc123/runs/run_XYZ789/steps")
    line = _line(logger, stream, "step", route="/v1/threads/{thread_id}/runs/{run_id}/steps", status=200)
    assert line["run_id"] == "run_XYZ789" and line["thread_id"] == "thread_abc123"
    assert line["route"] == "/v1/threads/{thread_id}/runs/{run_id}/steps" and line["status"] == 200

    logs.clear_ids()
    logs.bind_ids("run_only1", 7, None)  # task arguments: only id-shaped strings count
    line = _line(logger, stream, "task")
    assert line["run_id"] == "run_only1" and "thread_id" not in line

    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["level"] == "error" and "ValueError: boom" in str(line["exc"])
    logs.clear_ids()


def test_uvicorn_does_not_log_requests_the_api_logs_itself() -> None:
    """uvicorn writes its access line whenever `uvicorn.access` has a handler (--no-access-log only removes its
    own): once configured it has none, while the API's own access log and uvicorn's errors reach the root's."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("json")
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        assert logging.getLogger("uvicorn.error").hasHandlers() and logging.getLogger("api.access").hasHandlers()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
