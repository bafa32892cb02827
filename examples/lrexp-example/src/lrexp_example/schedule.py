"""REX (Chen et al., 2022, "REX: Revisiting Budgeted Training with an Improved Schedule"): a
schedule class of this project's own, held by lrexp to its schedule contract."""

from __future__ import annotations


class Rex:
    """Multiplier (1 - t/T) / (1/2 + (1 - t/T)/2) for t < T, then 0 (held after ``total``).

    lrexp fills ``total`` with the run's steps after warmup when it is null.
    """

    def __init__(self, total: int, floor: float = 0.0) -> None:
        if total < 1:
            raise ValueError(f"total must be >= 1, got {total}")
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"floor must be in [0, 1), got {floor}")
        self.total, self.floor = total, floor

    @property
    def length(self) -> int:
        return self.total

    def lr_at(self, step: int) -> float:
        left = max(0.0, 1.0 - min(step, self.total) / self.total)
        return self.floor + (1.0 - self.floor) * left / (0.5 + 0.5 * left)
