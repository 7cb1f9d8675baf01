"""The personalization benchmark's figures: rates with 95 % Wilson intervals, and the table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the normal quantile of 0.975


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int

    @property
    def point(self) -> float:
        return self.hits / self.n if self.n else 0.0

    def wilson(self, z: float = Z95) -> tuple[float, float]:
        """The Wilson score interval (it stays inside [0, 1] and is sensible at 0 or n hits,
        where the normal approximation collapses to a point)."""
        if not self.n:
            return 0.0, 1.0
        p, n = self.point, self.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low = 0.0 if self.hits == 0 else max(0.0, centre - half)  # exact at the ends
        high = 1.0 if self.hits == n else min(1.0, centre + half)
        return low, high

    def overlaps(self, other: Rate) -> bool:
        low, high = self.wilson()
        other_low, other_high = other.wilson()
        return low <= other_high and other_low <= high

    def __str__(self) -> str:
        low, high = self.wilson()
        return f"{self.point:4.0%} [{low:3.0%}, {high:3.0%}] ({self.hits}/{self.n})"


def rate(checks: Sequence[bool]) -> Rate:
    return Rate(sum(1 for c in checks if c), len(checks))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (what the README quotes)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
