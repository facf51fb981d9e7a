"""The run state machine, as data: which event moves a run from which status to which, and what must happen
alongside. Pure — no I/O — so it is tested exhaustively; the API and the workers carry out the effects.

    queued -> in_progress -> (requires_action -> queued -> ...) -> completed | failed | incomplete
    any active status -> cancelling -> cancelled;  queued | in_progress | requires_action -> expired
"""

from dataclasses import dataclass
from enum import StrEnum


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
    CONTINUE = "continue"  # a server-side step finished (e.g. a tool ran); the model is called again
    OUTPUTS_SUBMITTED = "outputs_submitted"  # the client submitted every requested tool output
    CANCEL = "cancel"  # the client asked to cancel
    CANCEL_DONE = "cancel_done"  # a worker confirmed nothing is in flight any more
    EXPIRE = "expire"  # expires_at passed
    FAIL = "fail"  # an error the run cannot recover from (upstream refused, retries exhausted)
    TRUNCATED = "truncated"  # the model stopped at max_completion_tokens / the prompt exceeded max_prompt_tokens


class Effect(StrEnum):
    STAMP_STARTED = "stamp_started"
    STAMP_COMPLETED = "stamp_completed"
    STAMP_FAILED = "stamp_failed"
    STAMP_CANCELLED = "stamp_cancelled"
    CLEAR_EXPIRY = "clear_expiry"  # expires_at is null once a run is terminal
    SET_REQUIRED_ACTION = "set_required_action"
    CLEAR_REQUIRED_ACTION = "clear_required_action"
    ENQUEUE = "enqueue"  # hand the run to a worker for its next step
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
        # A queued run can fail too: its assistant may have been deleted before a worker took it.
        (S.QUEUED, E.FAIL): Decision(S.FAILED, _ENDS | {F.STAMP_FAILED}),
        (S.IN_PROGRESS, E.TRUNCATED): Decision(S.INCOMPLETE, _ENDS),
        # Cancelling is cooperative: a worker confirms, discarding whatever was in flight.
        (S.CANCELLING, E.CANCEL_DONE): Decision(S.CANCELLED, _ENDS | {F.STAMP_CANCELLED}),
    }
    for status in _CANCELLABLE:
        rules[(status, E.CANCEL)] = Decision(S.CANCELLING, frozenset({F.ENQUEUE}))
        rules[(status, E.EXPIRE)] = Decision(S.EXPIRED, _ENDS)
    return rules


RULES = _rules()


def transition(status: Status, event: Event) -> Decision:
    """What `event` does to a run in `status`; InvalidTransition when it may not happen there."""
    try:
        return RULES[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None
