"""When to try a failed job or delivery again: a pure function, no database, no clock.

Transient failures back off exponentially with jitter up to a cap and are retried until
the work is ``max_age`` old (or has had ``max_attempts``); permanent failures stop at once
(dead letter).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Failure(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(hours=72)
    jitter: float = 0.5  # the delay is drawn from [delay * (1 - jitter), delay]
    max_attempts: int | None = None  # None: no limit but max_age

    def __post_init__(self) -> None:
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more (None: no limit)")
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("need 0 < base <= cap")


@dataclass(frozen=True)
class Decision:
    """Either retry at ``retry_at`` or give up (``retry_at`` is None) for ``reason``."""

    retry_at: datetime | None
    reason: str

    @property
    def gives_up(self) -> bool:
        return self.retry_at is None


def decide(
    failure: Failure,
    attempt: int,
    first_attempt_at: datetime,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Decision:
    """``attempt`` counts the attempts made so far, the failed one included (1 or more)."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if failure is Failure.PERMANENT:
        return Decision(None, "permanent failure")
    if policy.max_attempts is not None and attempt >= policy.max_attempts:
        return Decision(None, f"still failing after {attempt} attempt(s)")
    exponent = min(attempt - 1, 32)
    delay = min(policy.cap, policy.base * (2**exponent))
    draw = (rng or random.Random()).uniform(1 - policy.jitter, 1.0)
    retry_at = now + delay * draw
    if retry_at - first_attempt_at > policy.max_age:
        return Decision(None, f"still failing after {policy.max_age} (attempt {attempt})")
    return Decision(retry_at, f"transient failure, attempt {attempt}")
