"""The schedule contract and the registry of schedule families.

A schedule maps the optimizer step ``t`` (updates already taken, from 0) to a multiplier on
the base learning rate. Closed-form families are pure functions of ``t``; metric-driven
families also change their state when :meth:`Schedule.observe` sees a validation result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from lrexp.errors import ConfigError


class Schedule(ABC):
    """A learning-rate multiplier as a function of the optimizer step."""

    #: Parameters measured in steps; ``schedule.unit=epoch`` converts them from epochs.
    durations: ClassVar[tuple[str, ...]] = ()
    #: Families whose value depends on validation metrics, not only on the step (set per
    #: instance by wrappers such as :class:`~lrexp.schedules.warmup.Warmup`).
    metric_driven: bool = False
    #: Families with a natural end, reached at ``length`` steps.
    needs_total: ClassVar[bool] = False

    @abstractmethod
    def lr_at(self, step: int) -> float:
        """Return the multiplier used by the update that follows ``step`` earlier updates."""

    @property
    def length(self) -> int | None:
        """Steps after which the schedule holds its final value; None if it has no end."""
        return None

    @property
    def cycles_momentum(self) -> bool:
        """Whether :meth:`momentum_at` drives the optimizer's momentum (beta1 for Adam)."""
        return False

    def momentum_at(self, step: int) -> float | None:
        """Absolute momentum for the update that follows ``step`` updates; None: untouched."""
        return None

    def observe(self, metrics: Mapping[str, float], step: int) -> None:  # noqa: B027
        """Receive validation metrics; only metric-driven families react."""

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a checkpoint (empty for closed-form families)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027
        """Restore what :meth:`state_dict` returned."""


ScheduleT = TypeVar("ScheduleT", bound=type[Schedule])
REGISTRY: dict[str, type[Schedule]] = {}


def register(name: str) -> Callable[[ScheduleT], ScheduleT]:
    """Class decorator adding a family to :data:`REGISTRY` under ``name``."""

    def add(cls: ScheduleT) -> ScheduleT:
        REGISTRY[name] = cls
        return cls

    return add


def require(condition: bool, key: str, message: str) -> None:
    """Raise :class:`ConfigError` for ``schedule.<key>`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"schedule.{key}", message)


def require_step_count(value: Any, key: str, minimum: int = 1) -> None:
    """Check that a duration is an integer number of steps, at least ``minimum``."""
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        key,
        f"must be an integer >= {minimum}, got {value!r}",
    )


def require_factor(value: Any, key: str) -> None:
    """Check that a multiplier lies in [0, 1]."""
    require(
        isinstance(value, int | float) and 0.0 <= value <= 1.0,
        key,
        f"must be in [0, 1], got {value!r}",
    )


def require_positive(value: Any, key: str) -> None:
    """Check that a number is strictly positive."""
    require(
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
        key,
        f"must be > 0, got {value!r}",
    )


def require_list(value: Any, key: str) -> list[Any]:
    """Check that a value is a list (a YAML sequence) and return it as one."""
    require(
        isinstance(value, Sequence) and not isinstance(value, str),
        key,
        f"must be a list, got {value!r}",
    )
    return list(value)
