"""Exponential backoff, the one schedule behind every retry: the uploader's (full
jitter, so a fleet of kiosks that lost the network together does not return together)
and a source's reopen (no jitter: one device, and a technician reads the waits).

    >>> [backoff_delay(n, base=0.25, cap=1.0) for n in range(4)]
    [0.25, 0.5, 1.0, 1.0]
    >>> import random
    >>> 0.0 <= backoff_delay(3, base=1.0, cap=300.0, rng=random.Random(7)) < 8.0
    True
"""

from __future__ import annotations

import random

__all__ = ["Backoff", "backoff_delay"]

#: 2**62 already exceeds any cap; a larger exponent would only overflow the float.
_MAX_EXPONENT = 62


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failure number `attempt + 1` (attempt counts from 0):
    `base * 2**attempt`, at most `cap`; with `rng`, full jitter, uniform in [0, that)."""
    ceiling = min(cap, base * (2 ** min(max(attempt, 0), _MAX_EXPONENT)))
    return rng.uniform(0.0, ceiling) if rng is not None else ceiling


class Backoff:
    """The same schedule, stateful: `next()` after each failure, `reset()` after a success.

    >>> b = Backoff(0.25, 1.0)
    >>> [b.next() for _ in range(5)]
    [0.25, 0.5, 1.0, 1.0, 1.0]
    >>> b.reset(); b.next()
    0.25
    """

    def __init__(self, start: float, cap: float, *, rng: random.Random | None = None) -> None:
        self.start = min(start, cap)
        self.cap = cap
        self.rng = rng
        self._attempt = 0

    def next(self) -> float:
        delay = backoff_delay(self._attempt, base=self.start, cap=self.cap, rng=self.rng)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self._attempt = 0
