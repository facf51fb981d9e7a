"""The run state machine, as data: which event moves a run from which status to which, and what must happen
alongside. Pure — no I/O — so it is tested exhaustively; `shared/runflow.py` is its one executor, used by the
API and the workers alike.

    queued -> in_progress -> (requires_action -> queued -> ...) -> completed | failed | incomplete
    any active status -> cancelling -> cancelled;  queued | in_progress | requires_action -> expired

Every transition also bumps the run's `step_seq`, the compare-and-set token that makes work in flight for the
old status stale, and announces `thread.run.<status>` to streaming clients when the status changes.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    EXPIRED = "expired"
    INCOMPLETE = "incomplete"


TERMINAL = frozenset({Status.CANCELLED, Status.FAILED, Status.COMPLETED, Status.EXPIRED, Status.INCOMPLETE})
ACTIVE = frozenset(set(Status) - TERMINAL)


class Event(StrEnum):
    START = "start"  # a worker takes up a queued run
    REPLIED = "replied"  # the model answered with a message: nothing left to do
    CALLED_FUNCTIONS = "called_functions"  # the model wants outputs only the client can provide
    CONTINUE = "continue"  # a step's server-side part is recorded (tools to run, or their outputs); work goes on
    OUTPUTS_SUBMITTED = "outputs_submitted"  # the client submitted every requested tool output
    CANCEL = "cancel"  # the client asked to cancel
    CANCEL_DONE = "cancel_done"  # a worker confirmed nothing is in flight any more
    EXPIRE = "expire"  # expires_at passed
    FAIL = "fail"  # an error the run cannot recover from (upstream refused, retries exhausted)
    TRUNCATED = "truncated"  # the model stopped at max_completion_tokens / the prompt exceeded max_prompt_tokens


class Effect(StrEnum):
    STAMP_STARTED = "stamp_started"  # started_at, unless an earlier start set it
    STAMP_COMPLETED = "stamp_completed"
    STAMP_FAILED = "stamp_failed"
    STAMP_CANCELLED = "stamp_cancelled"
    CLEAR_EXPIRY = "clear_expiry"  # expires_at is null once a run is terminal
    SET_REQUIRED_ACTION = "set_required_action"  # the caller must give the required_action
    CLEAR_REQUIRED_ACTION = "clear_required_action"
    ENQUEUE = "enqueue"  # after the commit, hand the run to a worker for its next step
    CLOSE_OPEN_STEPS = "close_open_steps"  # steps still in progress end with the run's new status


@dataclass(frozen=True)
class Decision:
    status: Status
    effects: frozenset[Effect]


class InvalidTransition(Exception):
    def __init__(self, status: Status, event: Event) -> None:
        super().__init__(f"event {event.value!r} is not allowed in status {status.value!r}")
        self.status, self.event = status, event


_ENDS = frozenset({Effect.CLEAR_EXPIRY, Effect.CLEAR_REQUIRED_ACTION, Effect.CLOSE_OPEN_STEPS})
_CANCELLABLE = (Status.QUEUED, Status.IN_PROGRESS, Status.REQUIRES_ACTION)


def _rules() -> dict[tuple[Status, Event], Decision]:
    S, E, F = Status, Event, Effect
    rules = {
        # A started_at is kept across requires_action round trips: the first start stamps it.
        (S.QUEUED, E.START): Decision(S.IN_PROGRESS, frozenset({F.STAMP_STARTED})),
        (S.IN_PROGRESS, E.REPLIED): Decision(S.COMPLETED, _ENDS | {F.STAMP_COMPLETED}),
        (S.IN_PROGRESS, E.CALLED_FUNCTIONS): Decision(S.REQUIRES_ACTION, frozenset({F.SET_REQUIRED_ACTION})),
        (S.IN_PROGRESS, E.CONTINUE): Decision(S.IN_PROGRESS, frozenset({F.ENQUEUE})),
        # Submitted outputs send the run back to the queue; the next model call sees them.
        (S.REQUIRES_ACTION, E.OUTPUTS_SUBMITTED): Decision(S.QUEUED,
                                                           frozenset({F.CLEAR_REQUIRED_ACTION, F.ENQUEUE})),
        (S.IN_PROGRESS, E.FAIL): Decision(S.FAILED, _ENDS | {F.STAMP_FAILED}),
        (S.IN_PROGRESS, E.TRUNCATED): Decision(S.INCOMPLETE, _ENDS),
        # Cancelling is cooperative: a worker confirms, discarding whatever was in flight.
        (S.CANCELLING, E.CANCEL_DONE): Decision(S.CANCELLED, _ENDS | {F.STAMP_CANCELLED}),
    }
    for status in _CANCELLABLE:
        rules[(status, E.CANCEL)] = Decision(S.CANCELLING, frozenset({F.ENQUEUE}))
        rules[(status, E.EXPIRE)] = Decision(S.EXPIRED, _ENDS)
    return rules


RULES = _rules()

_STAMPS = {Effect.STAMP_COMPLETED: "completed_at", Effect.STAMP_FAILED: "failed_at",
           Effect.STAMP_CANCELLED: "cancelled_at"}
# The column a run step closed by the run's end is stamped with; other ends close open steps as completed.
_STEP_STAMPS = {Status.CANCELLED: "cancelled_at", Status.EXPIRED: "expired_at", Status.FAILED: "failed_at"}


def transition(status: Status, event: Event) -> Decision:
    """What `event` does to a run in `status`; InvalidTransition when it may not happen there."""
    try:
        return RULES[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None


@dataclass(frozen=True)
class Plan:
    """A transition worked out for one run: the columns to write (if the run is still at `expected_seq`)."""

    decision: Decision
    previous: str  # the status the run was read in
    expected_seq: int
    values: dict[str, Any]

    @property
    def announces(self) -> bool:
        """Streaming clients hear of status changes; in_progress -> in_progress is not one."""
        return bool(self.values["status"] != self.previous)


def plan(status: str, step_seq: int, started_at: int | None, event: Event, *, at: int, heartbeat: float,
         **given: Any) -> Plan:
    """The columns `event` writes on a run read at (`status`, `step_seq`): the new status and token, the effects'
    stamps and clears, and what the caller gives (usage, last_error, required_action, …)."""
    decision = transition(Status(status), event)
    fx = decision.effects
    if (Effect.SET_REQUIRED_ACTION in fx) != ("required_action" in given):
        raise ValueError(f"{event.value}: required_action goes with exactly the transitions that set it")
    values: dict[str, Any] = {"status": decision.status.value, "step_seq": step_seq + 1, "heartbeat_at": heartbeat}
    if Effect.STAMP_STARTED in fx:
        values["started_at"] = started_at or at
    values.update({column: at for effect, column in _STAMPS.items() if effect in fx})
    if Effect.CLEAR_EXPIRY in fx:
        values["expires_at"] = None
    if Effect.CLEAR_REQUIRED_ACTION in fx:
        values["required_action"] = None
    values.update(given)
    return Plan(decision=decision, previous=status, expected_seq=step_seq, values=values)


def closed_step_values(decision: Decision, at: int) -> dict[str, Any] | None:
    """How steps still in progress end when the run ends this way (None: the transition leaves them open)."""
    if Effect.CLOSE_OPEN_STEPS not in decision.effects:
        return None
    column = _STEP_STAMPS.get(decision.status)
    return {"status": decision.status.value, column: at} if column else {"status": "completed"}
