"""The per-run numbers a comparison can test (``--metric``).

- ``test_acc`` (``test/acc``, the default): test accuracy of the best-val/acc checkpoint.
- ``best_val_acc``: the highest val/acc of the run.
- ``final_val_loss``: the last val/loss (lower is better).
- ``val_acc_auc``: the area under the val/acc curve over optimizer steps, divided by the
  steps it spans: the mean val/acc over training, an anytime measure.
- ``steps_to_target``: the first validation step whose val/acc reaches ``--target`` (lower is
  better); a run that never reaches it has no value and is left out of the tests.
- any other metric a run logs (``test/mse``, ``test/excess``, ``val/r2``): its last value, the
  better direction read from the runs' ``metric_modes`` tag, which their task writes
  (:mod:`lrexp.tasks`). Without ``--metric`` the runs' ``test_metric`` tag chooses
  (``test/mse`` for regression), else ``test/acc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrexp.compare.common import CompareError
from lrexp.compare.records import RunRecord
from lrexp.tags import OBJECTIVE_TAG, TEST_METRIC_TAG, directions


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


def default_metric(records: Sequence[RunRecord]) -> str:
    """The runs' ``test_metric`` when they all name the same one, else ``test/acc``; when no
    run logged it but some finished (data modules without a test split), their task's
    validation objective (``val/acc``: its best value; ``val/mse``: its last)."""
    named = {r.tags.get(TEST_METRIC_TAG) for r in records}
    metric = str(named.pop()) if len(named) == 1 and None not in named else "test/acc"
    finished = [r for r in records if r.status == "FINISHED"]
    if finished and not any(metric in r.latest for r in records):
        return objective_metric(records)
    return metric


def objective_metric(records: Sequence[RunRecord]) -> str:
    """The validation metric the runs' task optimizes (their ``objective`` tag, ``val/mse``
    for regression) when they agree, else ``val/acc``."""
    named = {r.tags.get(OBJECTIVE_TAG, "val/acc:max").split(":")[0] for r in records}
    return named.pop() if len(named) == 1 else "val/acc"


def logged_outcome(name: str, records: Sequence[RunRecord]) -> Outcome | None:
    """A metric the runs log, with the direction their ``metric_modes`` tags record."""
    modes = {directions(r.tags).get(name) for r in records} - {None}
    if len(modes) > 1:
        raise CompareError(f"--metric {name}: the runs disagree on its direction ({modes})")
    return Outcome(name, name, modes.pop() == "max", False) if modes else None


def outcome(name: str | None, target: float | None, records: Sequence[RunRecord] = ()) -> Outcome:
    """The outcome called ``name`` (an alias such as ``test/acc``, or a metric whose direction
    the ``records`` carry; None: :func:`default_metric`); ``steps_to_target`` needs a
    target."""
    name = default_metric(records) if name is None else name
    key = ALIASES.get(name, name)
    if key not in OUTCOMES:
        logged = logged_outcome(name, records)
        if logged is not None:
            return logged
        known = sorted({k for r in records for k in directions(r.tags)})
        raise CompareError(
            f"--metric {name}: unknown; choose one of {', '.join(OUTCOMES)} (or test/acc)"
            + (f", or a metric the runs log: {', '.join(known)}" if known else "")
        )
    if key == "steps_to_target" and target is None:
        raise CompareError("--metric steps_to_target needs --target (a val/acc, e.g. 0.95)")
    return OUTCOMES[key]


def finite_points(record: RunRecord, key: str) -> list[tuple[int, float]]:
    return [(s, v) for s, v in record.history.get(key, []) if math.isfinite(v)]


def value(record: RunRecord, which: Outcome, target: float | None = None) -> float:
    """The run's number, NaN where it has none (no test, a diverged run, target not reached)."""
    acc = finite_points(record, "val/acc")
    if which.name not in OUTCOMES:
        result = record.latest.get(which.name, math.nan)
    elif which.name == "test_acc":
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
