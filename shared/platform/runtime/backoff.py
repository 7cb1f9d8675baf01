"""One exponential back-off with jitter for everything that waits before trying again: a queue
message that failed transiently, a batch whose function could not be reached, a supervised
process that died. (Retry *loops* use tenacity; this is only the delay, because the waiting is
done by SQS's visibility timeout or by the supervisor's loop, not by a sleeping caller.)"""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Delay before try `attempt + 1` (attempt counts from 1): base * 2**(attempt-1), capped,
    then reduced by up to `jitter` of itself so that many failures at once do not come back
    in step ("equal jitter" with jitter=0.5)."""
    exponent = min(max(attempt, 1) - 1, 32)  # 2**32 * base is past any cap
    delay = min(base_s * 2**exponent, cap_s)
    if jitter:
        delay -= delay * jitter * (rng or random).random()
    return max(delay, 0.0)
