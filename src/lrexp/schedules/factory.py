"""Build a bound schedule from the ``schedule`` config node: a built-in family by ``name``,
or any class by ``_target_`` (:mod:`lrexp.schedules.custom` holds it to the contract).

Everything about durations is resolved here, once: epochs to steps (``unit``), warmup steps or
fraction, and ``total: null`` meaning the steps left after warmup. Epoch durations may be
fractional; they are rounded to whole steps. Without data (``total_steps=None``) they are
checked at a nominal :data:`NOMINAL_STEPS_PER_EPOCH`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from lrexp.errors import ConfigError
from lrexp.schedules.base import REGISTRY, Schedule, require, require_step_count
from lrexp.schedules.custom import as_schedule, check_contract
from lrexp.schedules.torch_schedulers import (
    DURATION_ARGUMENTS,
    fill_lengths,
    takes_optimizer,
    torch_schedule,
)
from lrexp.schedules.warmup import Warmup, check_warmup
from lrexp.targets import accepted, arguments_of, target_of

COMMON_KEYS = ("name", "interval", "frequency", "unit", "strict", "warmup")
WARMUP_KEYS = ("steps", "frac", "start_factor", "shape")
#: Steps per epoch used to validate ``unit=epoch`` durations before the data is known.
NOMINAL_STEPS_PER_EPOCH = 1000


#: A built-in family's fields that lrexp sets, never the user
INTERNAL_FIELDS = ("state", "base_lr", "eps")


def allowed_with_internal(cls: Any) -> list[str]:
    """Every parameter a family's constructor takes: a dataclass's fields, else its keyword
    arguments (a user's class)."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return sorted(accepted(cls)[0] - {"self"})


def family_params(cls: Any) -> list[str]:
    """User-settable parameters of a family (internal fields excluded)."""
    return [name for name in allowed_with_internal(cls) if name not in INTERNAL_FIELDS]


def _to_steps(value: Any, steps_per_epoch: int) -> Any:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_to_steps(v, steps_per_epoch) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * steps_per_epoch)
    return value


def _warmup_steps(
    warmup: Mapping[str, Any], total_steps: int | None, per_unit: int
) -> tuple[int, str]:
    """Warmup length in optimizer steps, and the key it came from (for error messages)."""
    unknown = set(warmup) - set(WARMUP_KEYS)
    require(not unknown, f"warmup.{sorted(unknown)[0]}" if unknown else "", "unknown key")
    steps, frac = warmup.get("steps") or 0, warmup.get("frac")
    if frac is not None:
        require(steps == 0, "warmup.frac", "set either warmup.steps or warmup.frac, not both")
        require(
            isinstance(frac, int | float) and not isinstance(frac, bool) and 0 <= frac < 1,
            "warmup.frac",
            f"must be in [0, 1), got {frac!r}",
        )
        return (0 if total_steps is None else round(frac * total_steps)), "warmup.frac"
    if per_unit == 1:
        require(
            isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0,
            "warmup.steps",
            f"must be an integer >= 0, got {steps!r}",
        )
        return int(steps), "warmup.steps"
    require(
        isinstance(steps, int | float) and not isinstance(steps, bool) and steps >= 0,
        "warmup.steps",
        f"must be a number of epochs >= 0, got {steps!r}",
    )
    return round(steps * per_unit), "warmup.steps"


def build_schedule(
    cfg: Mapping[str, Any],
    total_steps: int | None,
    base_lr: float = 1.0,
    steps_per_epoch: int | None = None,
) -> Schedule:
    """Build the schedule named ``cfg['name']``.

    ``total_steps`` is the run's optimizer-step count; None validates the parameters without
    binding (before any data is loaded).
    """
    custom = cfg.get("_target_") is not None
    name = cfg.get("name")
    if custom:
        cls = target_of(cfg, "schedule")
        name = str(name or getattr(cls, "__qualname__", cfg["_target_"]))
    elif not isinstance(name, str) or name not in REGISTRY:
        raise ConfigError("schedule.name", f"must be one of {', '.join(sorted(REGISTRY))}")
    else:
        cls = REGISTRY[name]
    unit = cfg.get("unit", "step")
    require(unit in ("step", "epoch"), "unit", f"must be one of step, epoch, got {unit!r}")
    interval = cfg.get("interval", "step")
    require(
        interval in ("step", "epoch"), "interval", f"must be one of step, epoch, got {interval!r}"
    )
    frequency = cfg.get("frequency", 1)
    require(
        isinstance(frequency, int) and not isinstance(frequency, bool) and frequency >= 1,
        "frequency",
        f"must be an integer >= 1, got {frequency!r}",
    )
    strict = cfg.get("strict", False)
    require(isinstance(strict, bool), "strict", f"must be true or false, got {strict!r}")
    per_unit = 1
    if unit == "epoch":
        require(
            steps_per_epoch is not None or total_steps is None,
            "unit",
            "unit=epoch needs the run's steps per epoch to convert durations",
        )
        per_unit = steps_per_epoch or NOMINAL_STEPS_PER_EPOCH
        require_step_count(per_unit, "unit")

    params = arguments_of(cfg, COMMON_KEYS)
    from_torch = custom and takes_optimizer(cls, bool(cfg.get("_partial_")))
    allowed = family_params(cls) + (["monitor"] if from_torch else [])
    takes_any = not dataclasses.is_dataclass(cls) and accepted(cls)[1]  # **kwargs
    for key in params:
        if key not in allowed and not takes_any:
            raise ConfigError(
                f"schedule.{key}",
                f"unknown key for schedule {name}; allowed: {', '.join(allowed) or 'none'}",
            )
    converted: list[str] = []
    if unit == "epoch":
        for key in DURATION_ARGUMENTS if from_torch else getattr(cls, "durations", ()):
            if params.get(key) is not None:
                params[key] = _to_steps(params[key], per_unit)
                converted.append(key)

    warmup_node = cfg.get("warmup") or {}
    require(
        isinstance(warmup_node, Mapping),
        "warmup",
        f"must be a mapping of steps, frac, start_factor, shape, got {warmup_node!r}",
    )
    warmup_cfg = dict(warmup_node)
    warmup, warmup_key = _warmup_steps(warmup_cfg, total_steps, per_unit)
    start_factor = warmup_cfg.get("start_factor", 0.1)
    shape = warmup_cfg.get("shape", "linear")
    check_warmup(warmup, start_factor, shape)
    if total_steps is not None:
        require(
            warmup < total_steps,
            warmup_key,
            f"warmup of {warmup} steps must be shorter than the run ({total_steps} steps)",
        )
        if "total" in allowed and params.get("total") is None:
            params["total"] = total_steps - warmup
    if "base_lr" in allowed_with_internal(cls) and not from_torch:
        params["base_lr"] = base_lr

    try:
        if from_torch:
            updates = NOMINAL_STEPS_PER_EPOCH if total_steps is None else total_steps - warmup
            fill_lengths(cls, params, updates)
            built = torch_schedule(cls, params, base_lr, updates, cls.__qualname__)
        else:
            built = cls(**params)
    except TypeError as err:
        raise ConfigError(f"schedule.{name}", str(err)) from None
    except ConfigError as err:
        field_name = err.key.removeprefix("schedule.").split("[")[0]
        if field_name in converted:
            message = str(err).removeprefix(f"{err.key}: ")
            raise ConfigError(
                err.key, f"{message} (after converting epochs at {per_unit} steps per epoch)"
            ) from None
        raise
    except (ValueError, ArithmeticError) as err:
        if not custom:
            raise
        raise ConfigError("schedule._target_", f"{name}: {type(err).__name__}: {err}") from None
    schedule = as_schedule(built, name)
    if custom:
        check_contract(schedule, total_steps, name)
    if warmup > 0:
        schedule = Warmup(schedule, warmup, float(start_factor), shape)
    if total_steps is not None:
        check_length(schedule, total_steps, strict)
    return schedule


def check_length(schedule: Schedule, total_steps: int, strict: bool) -> None:
    """Warn (or, when strict, refuse) if a finite schedule does not end with the run."""
    length = schedule.length
    if length is None or length == total_steps:
        return
    message = f"the schedule lasts {length} steps but the run has {total_steps}; " + (
        "it holds its final value after that" if length < total_steps else "it will not finish"
    )
    if strict:
        raise ConfigError("schedule.total", message + " (schedule.strict=true)")
    warnings.warn(message, stacklevel=2)
