"""``tabulated``: multipliers given in a table, interpolated linearly.

The table's positions ``at`` are fractions of the schedule's length ``total`` (null: the run
after warmup), so one table fits any run length and a cooldown fork alike; step
``t`` gets ``values`` interpolated at ``t / total`` and, from ``total`` on, the last value.
``lrexp-predict optimize`` writes its synthesized schedules as such tables; any table works.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from dataclasses import dataclass, field

from lrexp.schedules.base import (
    Schedule,
    register,
    require,
    require_list,
    require_step_count,
)


@register("tabulated")
@dataclass
class Tabulated(Schedule):
    """values at fractions ``at`` of ``total`` steps, linear in between; held after ``total``."""

    at: list[float] = field(default_factory=lambda: [0.0, 1.0])
    values: list[float] = field(default_factory=lambda: [1.0, 0.01])
    total: int | None = None
    durations = ("total",)
    needs_total = True

    def __post_init__(self) -> None:
        at = require_list(self.at, "at")
        values = require_list(self.values, "values")
        for i, position in enumerate(at):
            require(
                isinstance(position, int | float)
                and not isinstance(position, bool)
                and 0.0 <= position <= 1.0,
                f"at[{i}]",
                f"must be a fraction in [0, 1], got {position!r}",
            )
        for i, value in enumerate(values):
            require(
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0,
                f"values[{i}]",
                f"must be a number >= 0, got {value!r}",
            )
        require(len(at) >= 2, "at", f"needs at least 2 positions (0 and 1), got {at}")
        require(at[0] == 0 and at[-1] == 1, "at", f"must start at 0 and end at 1, got {at}")
        require(
            all(a < b for a, b in itertools.pairwise(at)),
            "at",
            f"must be strictly increasing, got {at}",
        )
        require(
            len(values) == len(at),
            "values",
            f"needs one value per position ({len(at)}), got {len(values)}",
        )
        self.at = [float(a) for a in at]
        self.values = [float(v) for v in values]
        if self.total is not None:
            require_step_count(self.total, "total")

    @property
    def length(self) -> int | None:
        return self.total

    def lr_at(self, step: int) -> float:
        total = self.total or 1
        if step >= total:
            return self.values[-1]
        x = step / total
        i = bisect_right(self.at, x) - 1  # at[i] <= x < at[i + 1]
        left, right = self.at[i], self.at[i + 1]
        weight = (x - left) / (right - left)
        return self.values[i] + weight * (self.values[i + 1] - self.values[i])
