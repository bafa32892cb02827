"""A user's schedule class (``schedule._target_``) held to the same contract as lrexp's own.

The contract: ``lr_at(step) -> float``, the multiplier on the base LR for the update that
follows ``step`` updates, finite and >= 0; optionally ``length`` (steps after which it holds
its final value), ``observe(metrics, step)`` with ``metric_driven = True`` for a schedule that
reacts to validation, ``state_dict``/``load_state_dict`` for state a checkpoint must keep, and
``cycles_momentum``/``momentum_at``. A class that does not subclass
:class:`~lrexp.schedules.base.Schedule` is wrapped by :class:`UserSchedule`, which supplies the
optional parts; both are checked by :func:`check_contract` before any data loads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrexp.errors import ConfigError
from lrexp.schedules.base import Schedule


class UserSchedule(Schedule):
    """Gives a duck-typed schedule the optional parts of the contract it leaves out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.metric_driven = bool(getattr(inner, "metric_driven", False))

    def lr_at(self, step: int) -> float:
        return float(self.inner.lr_at(step))

    @property
    def length(self) -> int | None:
        length = getattr(self.inner, "length", None)
        return None if length is None else int(length)

    @property
    def cycles_momentum(self) -> bool:
        return bool(getattr(self.inner, "cycles_momentum", False))

    def momentum_at(self, step: int) -> float | None:
        momentum_at = getattr(self.inner, "momentum_at", None)
        return None if momentum_at is None else momentum_at(step)

    def observe(self, metrics: Mapping[str, float], step: int) -> None:
        observe = getattr(self.inner, "observe", None)
        if observe is not None:
            observe(metrics, step)

    def state_dict(self) -> dict[str, Any]:
        state_dict = getattr(self.inner, "state_dict", None)
        return dict(state_dict()) if state_dict is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        load_state_dict = getattr(self.inner, "load_state_dict", None)
        if load_state_dict is not None:
            load_state_dict(state)


def as_schedule(obj: Any, label: str) -> Schedule:
    """``obj`` as a :class:`Schedule`, or a ConfigError saying which part is missing."""
    if isinstance(obj, Schedule):
        return obj
    if not callable(getattr(obj, "lr_at", None)):
        raise ConfigError(
            "schedule._target_",
            f"{label} has no lr_at(step) method; a schedule maps the optimizer step to a "
            "multiplier on the base LR",
        )
    return UserSchedule(obj)


def check_contract(schedule: Schedule, total: int | None, label: str) -> None:
    """``lr_at`` gives finite multipliers >= 0 over the run (probed at its start, its end
    and past it), and a schedule with a ``length`` holds its value after that length."""
    key = "schedule._target_"
    length = schedule.length
    if length is not None and (isinstance(length, bool) or length < 0):
        raise ConfigError(key, f"{label}.length must be None or an integer >= 0, got {length!r}")
    end = total or length or 1000
    probes = sorted({0, 1, end // 2, max(end - 1, 0), end, 2 * end})
    for step in probes:
        try:
            value = schedule.lr_at(step)
        except Exception as err:
            raise ConfigError(
                key, f"{label}.lr_at({step}) raised {type(err).__name__}: {err}"
            ) from None
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(
                key, f"{label}.lr_at({step}) = {value!r}; it must be a finite number >= 0"
            )
    if length is not None:
        final = schedule.lr_at(length)
        for step in (length + 1, 2 * length + 1):
            if schedule.lr_at(step) != final:
                raise ConfigError(
                    key,
                    f"{label}.length is {length} but lr_at({step}) = {schedule.lr_at(step)!r} "
                    f"differs from lr_at({length}) = {final!r}; after its length a schedule "
                    "holds its final value",
                )
