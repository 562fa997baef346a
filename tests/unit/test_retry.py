"""The retry policy, without a database or a clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from node.pipeline.retry import Failure, RetryPolicy, decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=15), jitter=0.5)


def test_permanent_failures_give_up_at_once() -> None:
    decision = decide(Failure.PERMANENT, 1, T0, T0, POLICY)
    assert decision.gives_up
    assert decision.reason == "permanent failure"


def test_delays_grow_exponentially_within_the_jitter_band() -> None:
    rng = random.Random(4)
    for attempt, nominal in [(1, 10), (2, 20), (3, 40), (4, 80), (6, 320)]:
        decision = decide(Failure.TRANSIENT, attempt, T0, T0, POLICY, rng)
        assert decision.retry_at is not None
        delay = (decision.retry_at - T0).total_seconds()
        assert nominal * 0.5 <= delay <= nominal, (attempt, delay)


def test_delay_is_capped() -> None:
    for attempt in (8, 20, 500):
        decision = decide(Failure.TRANSIENT, attempt, T0, T0, POLICY, random.Random(1))
        assert decision.retry_at is not None
        assert decision.retry_at - T0 <= timedelta(minutes=15)
        assert decision.retry_at - T0 >= timedelta(minutes=7.5)


def test_jitter_spreads_retries() -> None:
    draws = {
        decide(Failure.TRANSIENT, 3, T0, T0, POLICY, random.Random(seed)).retry_at
        for seed in range(20)
    }
    assert len(draws) > 15


def test_gives_up_after_max_age() -> None:
    policy = RetryPolicy(max_age=timedelta(hours=72))
    near_end = T0 + timedelta(hours=71, minutes=59)
    late = decide(Failure.TRANSIENT, 300, T0, near_end, policy, random.Random(0))
    assert late.gives_up
    assert "after 3 days" in late.reason
    early = decide(Failure.TRANSIENT, 3, T0, T0 + timedelta(hours=1), policy, random.Random(0))
    assert not early.gives_up


@pytest.mark.parametrize(
    "bad", [{"jitter": 1.5}, {"base": timedelta(0)}, {"base": timedelta(minutes=20)}]
)
def test_invalid_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError):
        decide(Failure.TRANSIENT, 0, T0, T0, POLICY)


def test_max_attempts_gives_up_on_the_last_attempt() -> None:
    limited = RetryPolicy(base=timedelta(seconds=10), max_attempts=3)
    assert not decide(Failure.TRANSIENT, 2, T0, T0, limited, random.Random(0)).gives_up
    decision = decide(Failure.TRANSIENT, 3, T0, T0, limited, random.Random(0))
    assert decision.gives_up
    assert decision.reason == "still failing after 3 attempt(s)"
    assert not decide(Failure.TRANSIENT, 3, T0, T0, POLICY, random.Random(0)).gives_up


def test_max_attempts_must_allow_one() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
