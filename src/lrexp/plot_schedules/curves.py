"""The planned curves of a command line: Hydra overrides -> configs -> :class:`Curve` s.

A comma list (or ``choice(...)``, ``range(...)``) in any override gives one curve per
combination; the gallery gives one curve per schedule family. Each curve's LR per optimizer
step comes from :mod:`lrexp.plan`, so it is what training will follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrexp.config.compose import config_dir
from lrexp.config.overrides import compose_configs, expand_overrides
from lrexp.config.planning import PlannedRun, planned_run
from lrexp.errors import ConfigError
from lrexp.plan import momentum_curve
from lrexp.schedules import Warmup

#: Gallery panel order; families found in ``conf/schedule`` but not listed here come last.
GALLERY_ORDER = (
    "constant",
    "step",
    "multistep",
    "piecewise_constant",
    "exponential",
    "inverse_time",
    "linear",
    "polynomial",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "onecycle",
    "wsd",
    "inverse_sqrt",
    "plateau",
    "bold_driver",
    "adaptive_step",
)
#: Extra overrides for some gallery panels (wsd already has a 5% warmup in its config).
GALLERY_EXTRAS: dict[str, tuple[str, ...]] = {"inverse_sqrt": ("schedule.warmup.steps=80",)}
#: Schedule keys shared by every family; not shown as family parameters.
COMMON_SCHEDULE_KEYS = ("name", "interval", "frequency", "unit", "strict", "warmup")


@dataclass
class Curve:
    """One planned LR curve and what it was planned for."""

    label: str
    lrs: list[float]
    family: str
    steps_per_epoch: int
    metric_driven: bool = False
    monitor: str | None = None
    warmup_steps: int = 0
    momentum: list[float] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    swept: dict[str, str] = field(default_factory=dict)  #: the combination's swept values

    @property
    def total(self) -> int:
        return len(self.lrs)


def plan_curve(planned: PlannedRun, label: str) -> Curve:
    """The curve of a planned run; build warnings (schedule length vs run) become ``notes``."""
    bound = planned.bound
    schedule, lr, plan = bound.schedule, bound.base_lr, bound.plan
    settings = planned.schedule
    family = str(settings.get("name"))
    curve = Curve(
        label=label,
        lrs=[lr * schedule.lr_at(t) for t in bound.positions],
        family=family,
        steps_per_epoch=plan.steps_per_epoch,
        metric_driven=bool(schedule.metric_driven),
        monitor=settings.get("monitor") if schedule.metric_driven else None,
        warmup_steps=schedule.steps if isinstance(schedule, Warmup) else 0,
        momentum=momentum_curve(schedule, bound.positions),
        params={k: v for k, v in settings.items() if k not in COMMON_SCHEDULE_KEYS},
        context={
            "dataset": planned.dataset,
            "optimizer": f"{planned.optimizer} lr={lr:g}",
            "steps": f"{plan.total} steps",
            "steps_per_epoch": f"{plan.steps_per_epoch} steps/epoch",
        },
        notes=list(bound.warnings),
    )
    if curve.metric_driven:
        curve.notes.append(
            f"{family} is metric-driven (follows {curve.monitor}): drawn dashed as planned "
            "before any validation result; the real curve depends on validation"
        )
    return curve


@dataclass
class Plan:
    """The curves of one command line and the keys its comma lists sweep."""

    curves: list[Curve]
    swept_keys: list[str]

    def legend_label(self, curve: Curve) -> str:
        """The swept values, comma-separated (the legend title names the keys)."""
        if not self.swept_keys:
            return curve.label
        return ", ".join(curve.swept[key] for key in self.swept_keys)


def _context(swept: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in swept.items())


def plan_overrides(overrides: Sequence[str]) -> Plan:
    """Compose and plan every combination of ``overrides``."""
    combos = expand_overrides(overrides)
    swept_keys = list(combos[0][0])
    contexts = [_context(swept) for swept, _ in combos]
    configs = compose_configs([lines for _, lines in combos], contexts)
    curves = []
    for (swept, _), context, cfg in zip(combos, contexts, configs, strict=True):
        try:
            planned = planned_run(cfg)
            curve = plan_curve(planned, context or str(planned.schedule.get("name")))
        except ConfigError as err:
            if not context:
                raise
            detail = str(err).removeprefix(f"{err.key}: ")
            raise ConfigError(err.key, f"{detail} (with {context})") from None
        curve.swept = dict(swept)
        curves.append(curve)
    return Plan(curves, swept_keys)


def gallery_families() -> list[str]:
    """Every family with a config in ``conf/schedule``, in gallery order."""
    found = {
        p.stem for p in (config_dir() / "schedule").glob("*.yaml") if not p.stem.startswith("_")
    }
    ordered = [name for name in GALLERY_ORDER if name in found]
    return ordered + sorted(found - set(ordered))


def plan_gallery(overrides: Sequence[str] = ()) -> list[tuple[Curve, str]]:
    """One curve per family (``overrides`` apply to all), with each family's ``unit``."""
    combos = expand_overrides(overrides)
    if len(combos) > 1:
        raise ConfigError("--gallery", "comma lists cannot be combined with --gallery")
    families = gallery_families()
    base = combos[0][1]
    configs = compose_configs(
        [[*base, f"schedule={name}", *GALLERY_EXTRAS.get(name, ())] for name in families]
    )
    planned = [planned_run(cfg) for cfg in configs]
    return [
        (plan_curve(run, name), str(run.schedule.get("unit", "step")))
        for name, run in zip(families, planned, strict=True)
    ]
