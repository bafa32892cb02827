"""Types, the error and the metric-key test shared by the modules of :mod:`lrexp.compare`."""

from __future__ import annotations

Point = tuple[int, float]
History = dict[str, list[Point]]


class CompareError(RuntimeError):
    """A selection or store problem, reported by the CLI as one line (exit status 2)."""


def is_lr_key(key: str) -> bool:
    return key == "lr" or key.startswith("lr/")
