"""The run state machine, checked over every (status, event) pair."""

import itertools

import pytest

from shared.runstate import (
    ACTIVE,
    RULES,
    TERMINAL,
    Decision,
    Effect,
    Event,
    InvalidTransition,
    Status,
    closed_step_values,
    plan,
    transition,
)

ALLOWED = {
    (Status.QUEUED, Event.START): Status.IN_PROGRESS,
    (Status.QUEUED, Event.CANCEL): Status.CANCELLING,
    (Status.QUEUED, Event.EXPIRE): Status.EXPIRED,
    (Status.IN_PROGRESS, Event.REPLIED): Status.COMPLETED,
    (Status.IN_PROGRESS, Event.CALLED_FUNCTIONS): Status.REQUIRES_ACTION,
    (Status.IN_PROGRESS, Event.CONTINUE): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Event.FAIL): Status.FAILED,
    (Status.IN_PROGRESS, Event.TRUNCATED): Status.INCOMPLETE,
    (Status.IN_PROGRESS, Event.CANCEL): Status.CANCELLING,
    (Status.IN_PROGRESS, Event.EXPIRE): Status.EXPIRED,
    (Status.REQUIRES_ACTION, Event.OUTPUTS_SUBMITTED): Status.QUEUED,
    (Status.REQUIRES_ACTION, Event.CANCEL): Status.CANCELLING,
    (Status.REQUIRES_ACTION, Event.EXPIRE): Status.EXPIRED,
    (Status.CANCELLING, Event.CANCEL_DONE): Status.CANCELLED,
}


@pytest.mark.parametrize(("status", "event"), list(itertools.product(Status, Event)))
def test_every_pair(status: Status, event: Event) -> None:
    if (status, event) in ALLOWED:
        assert transition(status, event).status == ALLOWED[(status, event)]
    else:
        with pytest.raises(InvalidTransition):
            transition(status, event)


def test_the_table_is_exactly_the_allowed_set() -> None:
    assert set(RULES) == set(ALLOWED)


def test_terminal_statuses_never_move() -> None:
    for status, event in itertools.product(TERMINAL, Event):
        with pytest.raises(InvalidTransition):
            transition(status, event)


@pytest.mark.parametrize(("key", "decision"), list(RULES.items()))
def test_terminal_transitions_end_cleanly(key: tuple[Status, Event], decision: Decision) -> None:
    """Reaching a terminal status clears expires_at and required_action and closes open steps."""
    if decision.status in TERMINAL:
        assert {Effect.CLEAR_EXPIRY, Effect.CLEAR_REQUIRED_ACTION, Effect.CLOSE_OPEN_STEPS} <= decision.effects
        assert Effect.ENQUEUE not in decision.effects
    else:
        assert Effect.CLEAR_EXPIRY not in decision.effects


def test_work_is_enqueued_whenever_a_worker_must_act_next() -> None:
    for (status, _event), decision in RULES.items():
        needs_worker = decision.status in (Status.QUEUED, Status.CANCELLING) or (
            decision.status == Status.IN_PROGRESS and status == Status.IN_PROGRESS)
        assert (Effect.ENQUEUE in decision.effects) == needs_worker, (status, _event)


def test_only_start_stamps_started_and_only_functions_require_action() -> None:
    assert [k for k, d in RULES.items() if Effect.STAMP_STARTED in d.effects] == [(Status.QUEUED, Event.START)]
    assert [k for k, d in RULES.items() if Effect.SET_REQUIRED_ACTION in d.effects] == [
        (Status.IN_PROGRESS, Event.CALLED_FUNCTIONS)]
    assert set(Status) == ACTIVE | TERMINAL and not ACTIVE & TERMINAL


def test_plan_turns_effects_into_columns() -> None:
    p = plan("in_progress", 7, 100, Event.REPLIED, at=200, heartbeat=1.5, usage={"total_tokens": 3})
    assert p.expected_seq == 7 and p.announces
    assert p.values == {"status": "completed", "step_seq": 8, "heartbeat_at": 1.5, "completed_at": 200,
                        "expires_at": None, "required_action": None, "usage": {"total_tokens": 3}}


def test_a_restart_keeps_the_first_started_at() -> None:
    assert plan("queued", 0, None, Event.START, at=50, heartbeat=0).values["started_at"] == 50
    assert plan("queued", 4, 20, Event.START, at=50, heartbeat=0).values["started_at"] == 20


def test_continue_is_not_announced_and_requires_action_needs_its_action() -> None:
    assert not plan("in_progress", 1, 1, Event.CONTINUE, at=2, heartbeat=0).announces
    with pytest.raises(ValueError):
        plan("in_progress", 1, 1, Event.CALLED_FUNCTIONS, at=2, heartbeat=0)
    with pytest.raises(ValueError):
        plan("in_progress", 1, 1, Event.REPLIED, at=2, heartbeat=0, required_action={})
    p = plan("in_progress", 1, 1, Event.CALLED_FUNCTIONS, at=2, heartbeat=0, required_action={"type": "x"})
    assert p.values["required_action"] == {"type": "x"} and p.values["status"] == "requires_action"


@pytest.mark.parametrize(("status", "event", "closed"), [
    ("cancelling", Event.CANCEL_DONE, {"status": "cancelled", "cancelled_at": 9}),
    ("in_progress", Event.EXPIRE, {"status": "expired", "expired_at": 9}),
    ("in_progress", Event.FAIL, {"status": "failed", "failed_at": 9}),
    ("in_progress", Event.REPLIED, {"status": "completed"}),
    ("in_progress", Event.TRUNCATED, {"status": "completed"}),
    ("in_progress", Event.CONTINUE, None),
])
def test_how_open_steps_close(status: str, event: Event, closed: dict[str, object] | None) -> None:
    assert closed_step_values(transition(Status(status), event), 9) == closed
