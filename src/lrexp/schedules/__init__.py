"""LR schedules as closed-form functions of the optimizer step, a registry, and the public
API for any training loop (:mod:`lrexp.schedules.api`)."""

from lrexp.schedules import closed_form, cooldown, metric_driven, tabulated
from lrexp.schedules.api import make_schedule, make_scheduler
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
    "make_schedule",
    "make_scheduler",
    "metric_driven",
    "register",
    "tabulated",
]
