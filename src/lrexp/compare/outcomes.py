"""The per-run numbers a comparison can test (``--metric``).

- ``test_acc`` (``test/acc``, the default): test accuracy of the best-val/acc checkpoint.
- ``best_val_acc``: the highest val/acc of the run.
- ``final_val_loss``: the last val/loss (lower is better).
- ``val_acc_auc``: the area under the val/acc curve over optimizer steps, divided by the
  steps it spans: the mean val/acc over training, an anytime measure.
- ``steps_to_target``: the first validation step whose val/acc reaches ``--target`` (lower is
  better); a run that never reaches it has no value and is left out of the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrexp.compare.common import CompareError
from lrexp.compare.records import RunRecord


@dataclass(frozen=True)
class Outcome:
    """A tested number: its name, how the report writes it, and which direction is better."""

    name: str
    label: str
    higher_is_better: bool
    accuracy: bool  # a share of examples: the default equivalence margin applies


OUTCOMES = {
    o.name: o
    for o in (
        Outcome("test_acc", "test/acc", True, True),
        Outcome("best_val_acc", "best val/acc", True, True),
        Outcome("final_val_loss", "final val/loss", False, False),
        Outcome("val_acc_auc", "area under val/acc", True, True),
        Outcome("steps_to_target", "steps to target val/acc", False, False),
    )
}
ALIASES = {"test/acc": "test_acc", "val/acc": "best_val_acc", "val/loss": "final_val_loss"}


def outcome(name: str, target: float | None) -> Outcome:
    """The outcome called ``name`` (or an alias such as ``test/acc``); ``steps_to_target``
    needs a target."""
    key = ALIASES.get(name, name)
    if key not in OUTCOMES:
        raise CompareError(
            f"--metric {name}: unknown; choose one of {', '.join(OUTCOMES)} (or test/acc)"
        )
    if key == "steps_to_target" and target is None:
        raise CompareError("--metric steps_to_target needs --target (a val/acc, e.g. 0.95)")
    return OUTCOMES[key]


def finite_points(record: RunRecord, key: str) -> list[tuple[int, float]]:
    return [(s, v) for s, v in record.history.get(key, []) if math.isfinite(v)]


def value(record: RunRecord, which: Outcome, target: float | None = None) -> float:
    """The run's number, NaN where it has none (no test, a diverged run, target not reached)."""
    acc = finite_points(record, "val/acc")
    if which.name == "test_acc":
        result = record.latest.get("test/acc", math.nan)
    elif which.name == "best_val_acc":
        result = max((v for _, v in acc), default=math.nan)
    elif which.name == "final_val_loss":
        loss = record.history.get("val/loss", [])
        result = loss[-1][1] if loss else math.nan
    elif which.name == "val_acc_auc":
        if not acc:
            return math.nan
        steps = np.array([s for s, _ in acc], dtype=float)
        values = np.array([v for _, v in acc])
        span = steps[-1] - steps[0]
        result = float(np.trapezoid(values, steps) / span) if span > 0 else float(values[-1])
    else:
        reached = [s for s, v in acc if target is not None and v >= target]
        result = float(reached[0]) if reached else math.nan
    return float(result) if math.isfinite(result) else math.nan
