"""The one back-off delay (shared/platform/runtime/backoff.py) that queue retries and the
supervisor use."""

from __future__ import annotations

import random

from shared.platform.runtime.backoff import backoff_delay


def test_doubles_from_the_base_up_to_the_cap_without_jitter() -> None:
    delays = [backoff_delay(n, base_s=2, cap_s=30, jitter=0) for n in range(1, 7)]
    assert delays == [2, 4, 8, 16, 30, 30]


def test_jitter_only_shortens_and_stays_within_its_share() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        full = backoff_delay(attempt, base_s=2, cap_s=300, jitter=0)
        for _ in range(50):
            delay = backoff_delay(attempt, base_s=2, cap_s=300, jitter=0.5, rng=rng)
            assert full / 2 <= delay <= full


def test_absurd_attempt_counts_stay_at_the_cap() -> None:
    assert backoff_delay(10_000, base_s=1, cap_s=300, jitter=0) == 300
    assert backoff_delay(0, base_s=1, cap_s=300, jitter=0) == 1  # counts from 1
