"""Search space: Hydra override lines (``interval``, ``tag(log, ...)``, ``range``, ``choice``)
turned into Optuna distributions and fixed overrides, and sampled values back into overrides."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def distribution_of(override: Override) -> BaseDistribution | None:
    """The Optuna distribution a sweep override describes; None for a plain (fixed) value."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if not override.is_sweep_override():
        return None
    value = override.value()
    key = override.get_key_element()
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        log_scale = "log" in value.tags
        if "int" in value.tags:
            low, high = math.ceil(value.start), math.floor(value.end)
            return IntDistribution(low, high, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{key}: empty range")
        first, last, step = values[0], values[-1], value.step
        if isinstance(first, int) and isinstance(last, int) and isinstance(step, int):
            return IntDistribution(first, last, step=step)
        if isinstance(first, int | float) and isinstance(last, int | float) and step:
            return FloatDistribution(float(first), float(last), step=float(step))
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(override.sweep_string_iterator()))
    raise ValueError(f"{key}: unsupported sweep {override.input_line!r}")


def parse_space(
    lines: Iterable[str],
) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split ``key=value`` override lines into a search space and fixed overrides.

    Later lines win; a fixed value removes the key from the space (command line over YAML).
    Fixed overrides map the key (with any ``+``/``~`` prefix) to the full override line.
    """
    lines = list(lines)
    parsed = OverridesParser.create().parse_overrides(lines)
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for line, override in zip(lines, parsed, strict=True):
        key = override.get_key_element()
        distribution = distribution_of(override)
        if distribution is None:
            space.pop(key, None)
            fixed[key] = override.input_line or line
        else:
            fixed.pop(key, None)
            space[key] = distribution
    return space, fixed


def params_lines(params: Mapping[str, Any] | None) -> list[str]:
    """``hydra.sweeper.params`` as override lines (``key=value``)."""
    return [f"{key}={value}" for key, value in (params or {}).items()]


def format_value(value: Any) -> str:
    """A sampled value as an override value (floats with ``repr``: exact round trip)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_overrides(fixed: Mapping[str, str], params: Mapping[str, Any]) -> list[str]:
    return [*fixed.values(), *(f"{k}={format_value(v)}" for k, v in params.items())]
