"""Types, the error and the metric-key test shared by the modules of :mod:`lrexp.compare`."""

from __future__ import annotations

from lrexp.tracking.history_file import is_lr_key

__all__ = ["CompareError", "History", "Point", "is_lr_key"]

Point = tuple[int, float]
History = dict[str, list[Point]]


class CompareError(RuntimeError):
    """A selection or store problem, reported by the CLI as one line (exit status 2)."""
