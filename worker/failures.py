"""What a step does when something other than the model fails.

Errors of our own infrastructure (Redis, Postgres: restarts, failovers, timeouts) never fail the user's run: the
step is retried with backoff (its task, see worker/tasks.py), or left for the beat's sweep. A bug does fail the
run, with `server_error`, rather than leaving it in progress until it expires.
"""

import psycopg
import redis
from sqlalchemy import exc as sa_exc

from shared import dispatch, events, runflow
from shared.runstate import Event, Status
from worker import inflight, store

TRANSIENT: tuple[type[BaseException], ...] = (redis.RedisError, sa_exc.OperationalError, sa_exc.InterfaceError,
                                              psycopg.OperationalError, psycopg.InterfaceError)


class Interrupted(Exception):
    """The step met an infrastructure error mid-way; its task retries it at `seq`, the run's token when the
    error came (a step that started the run has moved it on already)."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


RETRYABLE: tuple[type[BaseException], ...] = (Interrupted, *TRANSIENT)
# What a step lets through as it is: retried by its task, or a duplicate standing down.
PASSED_ON: tuple[type[BaseException], ...] = (inflight.Duplicate, *RETRYABLE)


def fail_unexpectedly(run_id: str, seq: int) -> None:
    """Fail the run with `server_error`, if it is still at the step that broke."""
    with store.begin() as conn:
        run = store.load_run(conn, run_id)
        if run is None or run.step_seq != seq or run.status != Status.IN_PROGRESS:
            return
        applied = runflow.apply(conn, run, Event.FAIL, last_error={
            "code": "server_error", "message": "The server had an error while processing this run."})
    dispatch.after_commit(events.shared_client(), run_id, applied)
