"""LR schedules as closed-form functions of the optimizer step, plus a registry."""

from lrexp.schedules import closed_form, cooldown, metric_driven
from lrexp.schedules.base import REGISTRY, Schedule, register
from lrexp.schedules.factory import build_schedule
from lrexp.schedules.warmup import Warmup

__all__ = [
    "REGISTRY",
    "Schedule",
    "Warmup",
    "build_schedule",
    "closed_form",
    "cooldown",
    "metric_driven",
    "register",
]
