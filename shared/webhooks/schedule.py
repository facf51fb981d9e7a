"""When a failing delivery is tried again, and when an endpoint is given up on: pure decisions, tested alone.

Retries back off (by default 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h: eleven attempts over
about a day), each wait stretched by up to 10% at random so that an endpoint coming back is not hit by every
delivery at once. An endpoint whose every attempt has failed for WEBHOOK_DISABLE_AFTER_SECONDS is disabled, with
the reason on the endpoint, until someone enables it again.
"""

import random
from dataclasses import dataclass

JITTER = 0.1


def parse(value: str) -> tuple[float, ...]:
    waits = tuple(float(part) for part in value.split(",") if part.strip())
    if any(w <= 0 for w in waits):
        raise ValueError(f"retry waits must be positive seconds: {value!r}")
    return waits


@dataclass(frozen=True)
class Outcome:
    """What a failed attempt leads to."""

    retry_at: float | None  # None: no attempts left, the delivery has failed for good
    disable: bool  # the endpoint has failed for too long


def after_failure(*, attempts: int, at: float, waits: tuple[float, ...], failing_since: float | None,
                  disable_after: float, rng: random.Random | None = None) -> Outcome:
    """`attempts`: how many have been made, this one included; `failing_since`: the endpoint's first failure in
    the current run of failures (None if this is it)."""
    retry_at = None
    if attempts <= len(waits):
        wait = waits[attempts - 1]
        retry_at = at + wait * (1 + JITTER * (rng or random).random())
    since = at if failing_since is None else failing_since
    return Outcome(retry_at=retry_at, disable=at - since >= disable_after)


def deadline(created_at: float, waits: tuple[float, ...]) -> float:
    """After this, a delivery still pending (say, its endpoint was disabled meanwhile) is abandoned."""
    return created_at + sum(waits) * (1 + JITTER) + 60
