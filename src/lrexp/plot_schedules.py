"""Draw the learning-rate curve a configuration will follow, without training.

    python -m lrexp.plot_schedules schedule=step,cosine,onecycle --out lr.png --csv lr.csv
    python -m lrexp.plot_schedules --gallery docs/schedules.png

It takes the same Hydra overrides as ``train.py``; a comma list (or ``choice(...)``,
``range(...)``) in any override draws every combination in one figure. The step counts are
those Lightning will use (:func:`planned_steps`), and the per-step LR follows how Lightning
steps lrexp's scheduler (:func:`planned_curve`), so the plan can also be logged next to the LR
a run actually traced. Metric-driven families cannot be planned: they are drawn dashed, as
they stand before any validation result.

Matplotlib is imported inside the drawing functions and no torch/Lightning import is needed.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
import textwrap
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from lrexp.errors import ConfigError
from lrexp.schedules import REGISTRY, Schedule, Warmup, build_schedule

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Examples each dataset source provides for training + validation (digits: before its test
#: split is carved out; the others ship their own test split).
SOURCE_SIZES: dict[str, int] = {
    "digits": 1797,
    "mnist1d": 4000,
    "mnist": 60000,
    "fashion_mnist": 60000,
    "cifar10": 50000,
}
#: Sources whose ``test_size`` examples are taken out of ``SOURCE_SIZES`` (the others ignore it).
CARVES_TEST: frozenset[str] = frozenset({"digits"})
#: Lightning's ``max_epochs`` when neither ``max_epochs`` nor ``max_steps`` is set.
LIGHTNING_DEFAULT_EPOCHS = 1000

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
DPI = 110


# --------------------------------------------------------------------------- step counts


def _int_setting(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def train_size(dataset: Mapping[str, Any]) -> int:
    """Training examples of a ``dataset`` config node, without loading the data."""
    name = dataset.get("name")
    if not isinstance(name, str) or name not in SOURCE_SIZES:
        raise ConfigError("dataset.name", f"must be one of {', '.join(SOURCE_SIZES)}")
    available = SOURCE_SIZES[name]
    val_size = _int_setting(dataset.get("val_size", 0), "dataset.val_size", 0)
    test_size = 0
    if name in CARVES_TEST:
        test_size = _int_setting(dataset.get("test_size", 0), "dataset.test_size", 0)
    size = available - test_size - val_size
    if size < 1:
        raise ConfigError(
            "dataset.val_size",
            f"{name} has {available} examples; val_size {val_size}"
            + (f" + test_size {test_size}" if name in CARVES_TEST else "")
            + " leaves none to train on",
        )
    return size


def _limit_batches(batches: int, limit: Any) -> int:
    """Lightning's ``limit_train_batches``: an int caps the count, a float is a fraction."""
    if limit is None:
        return batches
    if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
        raise ConfigError("trainer.limit_train_batches", f"must be >= 0, got {limit!r}")
    limited = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    if limited < 1:
        raise ConfigError("trainer.limit_train_batches", f"leaves no training batch ({limit!r})")
    return limited


@dataclass(frozen=True)
class StepPlan:
    """How a run's training batches turn into optimizer steps."""

    total: int  #: optimizer steps in the run
    steps_per_epoch: int  #: ceil(batches_per_epoch / accumulate)
    batches_per_epoch: int  #: ceil(train_size / batch_size), after ``limit_train_batches``
    accumulate: int  #: ``trainer.accumulate_grad_batches``


def step_plan(cfg: DictConfig) -> StepPlan:
    """The step counts Lightning will use for ``cfg`` (see :func:`planned_steps`)."""
    dataset, trainer = cfg.dataset, cfg.trainer
    batch_size = _int_setting(dataset.get("batch_size"), "dataset.batch_size", 1)
    accumulate = _int_setting(
        trainer.get("accumulate_grad_batches", 1), "trainer.accumulate_grad_batches", 1
    )
    batches = math.ceil(train_size(dataset) / batch_size)
    batches = _limit_batches(batches, trainer.get("limit_train_batches"))
    steps_per_epoch = math.ceil(batches / accumulate)

    max_steps = trainer.get("max_steps", -1)
    if (
        isinstance(max_steps, bool)
        or not isinstance(max_steps, int)
        or not (max_steps == -1 or max_steps >= 1)
    ):
        raise ConfigError("trainer.max_steps", f"must be -1 or an integer >= 1, got {max_steps!r}")
    max_epochs = trainer.get("max_epochs")
    if max_epochs is None:  # Lightning's default: 1000 epochs unless max_steps/max_time limit
        unlimited = max_steps == -1 and trainer.get("max_time") is None
        max_epochs = LIGHTNING_DEFAULT_EPOCHS if unlimited else -1
    max_epochs = _int_setting(max_epochs, "trainer.max_epochs", -1)
    if max_epochs == 0:
        raise ConfigError("trainer.max_epochs", "must be -1 or an integer >= 1, got 0")
    if max_epochs == -1:
        if max_steps == -1:
            raise ConfigError(
                "trainer.max_epochs",
                "a run without max_epochs or max_steps (endless, or limited only by "
                "max_time) has no planned curve",
            )
        total = max_steps
    else:
        total = steps_per_epoch * max_epochs
        if max_steps != -1:
            total = min(total, max_steps)
    return StepPlan(total, steps_per_epoch, batches, accumulate)


def planned_steps(cfg: DictConfig) -> tuple[int, int]:
    """``(total optimizer steps, optimizer steps per epoch)`` of the run ``cfg`` describes.

    steps_per_epoch = ceil(ceil(train_size / batch_size) / accumulate_grad_batches); total =
    steps_per_epoch * max_epochs, capped by ``max_steps`` unless -1: the same numbers as
    :meth:`lrexp.module.Classifier.planned_optimizer_steps` uses for a real run.
    """
    plan = step_plan(cfg)
    return plan.total, plan.steps_per_epoch


# --------------------------------------------------------------------------- planned curves


def base_lr(cfg: DictConfig) -> float:
    """``optimizer.lr`` as a positive float."""
    lr = cfg.optimizer.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ConfigError("optimizer.lr", f"must be a number > 0, got {lr!r}")
    return float(lr)


def schedule_settings(cfg: DictConfig) -> dict[str, Any]:
    """The resolved ``schedule`` node as a plain dict."""
    container = OmegaConf.to_container(cfg.schedule, resolve=True)
    if not isinstance(container, dict):
        raise ConfigError("schedule", "must be a mapping")
    return {str(k): v for k, v in container.items()}


def scheduler_positions(plan: StepPlan, interval: str = "step", frequency: int = 1) -> list[int]:
    """For each optimizer update k, the update count at which the LR it uses was last set.

    Mirrors Lightning: the LR is set once at the start, then the scheduler is stepped after an
    optimizer step whose (per-epoch, 1-based) batch index is a multiple of ``frequency``
    (``interval=step``), or at the end of every ``frequency``-th epoch (``interval=epoch``). An
    optimizer step happens every ``accumulate`` batches and on the last batch of an epoch.
    """
    if interval == "step" and frequency == 1:
        return list(range(plan.total))
    positions: list[int] = []
    current = 0
    epoch = 0
    n, k = plan.batches_per_epoch, plan.accumulate
    while len(positions) < plan.total:
        for batch in range(1, n + 1):
            if batch % k and batch != n:
                continue  # accumulating gradients: no optimizer step, no scheduler step
            positions.append(current)
            if len(positions) == plan.total:
                return positions
            if interval == "step" and batch % frequency == 0:
                current = len(positions)
        epoch += 1
        if interval == "epoch" and epoch % frequency == 0:
            current = len(positions)
    return positions


def _positions_for(settings: Mapping[str, Any], plan: StepPlan) -> list[int]:
    frequency = _int_setting(settings.get("frequency", 1), "schedule.frequency", 1)
    interval = settings.get("interval", "step")
    if interval not in ("step", "epoch"):
        raise ConfigError("schedule.interval", f"must be one of step, epoch, got {interval!r}")
    return scheduler_positions(plan, interval, frequency)


@dataclass
class BoundSchedule:
    """A config's schedule bound to its run, with what is needed to step through it."""

    schedule: Schedule
    base_lr: float
    plan: StepPlan
    positions: list[int]  #: per update, the update count its LR was set at
    warnings: list[str]  #: build_schedule's warnings (e.g. schedule length != run length)


def bind(cfg: DictConfig) -> BoundSchedule:
    """Build ``cfg``'s schedule as training does (same total, steps per epoch and base LR).

    Warnings from ``build_schedule`` are collected, not shown: training's own build warns.
    """
    plan = step_plan(cfg)
    lr = base_lr(cfg)
    settings = schedule_settings(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedule = build_schedule(settings, plan.total, lr, plan.steps_per_epoch)
    positions = _positions_for(settings, plan)
    return BoundSchedule(schedule, lr, plan, positions, [str(w.message) for w in caught])


def planned_curve(cfg: DictConfig) -> list[float]:
    """The absolute LR of every optimizer update 0..total-1 that the run ``cfg`` will take.

    With the default ``interval=step, frequency=1`` this is ``optimizer.lr * lr_at(k)``;
    ``interval=epoch`` (or a frequency > 1) holds values the way Lightning steps the scheduler.
    Metric-driven schedules give their curve without any validation feedback.
    """
    bound = bind(cfg)
    return [bound.base_lr * bound.schedule.lr_at(t) for t in bound.positions]


def planned_momentum(cfg: DictConfig) -> list[float] | None:
    """Momentum (or Adam's beta1) per update when the schedule cycles it, else None."""
    bound = bind(cfg)
    return _momentum_curve(bound.schedule, bound.positions)


def _momentum_curve(schedule: Schedule, positions: Sequence[int]) -> list[float] | None:
    # momentum cycling is optional in the schedule API: use it only where it exists
    momentum_at = getattr(schedule, "momentum_at", None)
    if not getattr(schedule, "cycles_momentum", False) or momentum_at is None:
        return None
    values = [momentum_at(t) for t in positions]
    if any(v is None for v in values):
        return None
    return [float(v) for v in values]


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


def plan_curve(cfg: DictConfig, label: str) -> Curve:
    """Plan ``cfg``'s curve; build warnings (schedule length vs run) become ``notes``."""
    bound = bind(cfg)
    schedule, lr, plan = bound.schedule, bound.base_lr, bound.plan
    settings = schedule_settings(cfg)
    family = str(settings.get("name"))
    curve = Curve(
        label=label,
        lrs=[lr * schedule.lr_at(t) for t in bound.positions],
        family=family,
        steps_per_epoch=plan.steps_per_epoch,
        metric_driven=bool(schedule.metric_driven),
        monitor=settings.get("monitor") if schedule.metric_driven else None,
        warmup_steps=schedule.steps if isinstance(schedule, Warmup) else 0,
        momentum=_momentum_curve(schedule, bound.positions),
        params={k: v for k, v in settings.items() if k not in COMMON_SCHEDULE_KEYS},
        context={
            "dataset": str(cfg.dataset.name),
            "optimizer": f"{cfg.optimizer.name} lr={lr:g}",
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


# --------------------------------------------------------------------------- overrides


def expand_overrides(overrides: Sequence[str]) -> list[tuple[dict[str, str], list[str]]]:
    """Every combination of the sweeps in ``overrides``: ``(swept key -> value, overrides)``.

    ``a,b,c``, ``choice(a,b)`` and ``range(0,3)`` values sweep (Hydra's multirun grammar, parsed
    by Hydra's own override parser); ``[1,2]`` stays one list value.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise ConfigError("overrides", one_line(err)) from None
    options: list[list[tuple[str, str, str]]] = []
    for raw, override in zip(overrides, parsed, strict=True):
        if not override.is_sweep_override():
            options.append([("", "", raw)])
            continue
        if not override.is_discrete_sweep():
            raise ConfigError(raw, "only lists of values can be overlaid (a,b,c / choice / range)")
        key = override.get_key_element()
        try:
            values = list(override.sweep_string_iterator())
        except Exception as err:  # glob() needs Hydra's config loader
            raise ConfigError(raw, f"cannot expand this sweep ({err})") from None
        options.append([(key.lstrip("+~"), value, f"{key}={value}") for value in values])
    combos = []
    for choice in itertools.product(*options):
        swept = {key: value for key, value, _ in choice if key}
        combos.append((swept, [line for _, _, line in choice]))
    return combos


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


def compose_configs(
    overrides_list: Sequence[Sequence[str]], contexts: Sequence[str] | None = None
) -> list[DictConfig]:
    """Compose ``conf/config.yaml`` (from :func:`lrexp.cli.config_dir`) once per override list.

    Hydra's composition errors become a one-line :class:`ConfigError` on ``overrides``, naming
    the combination (``contexts``) that failed.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lrexp.cli import config_dir

    configs = []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for i, overrides in enumerate(overrides_list):
            try:
                configs.append(compose("config", overrides=list(overrides)))
            except (HydraException, OmegaConfBaseException) as err:
                where = f" (with {contexts[i]})" if contexts and contexts[i] else ""
                raise ConfigError("overrides", one_line(err) + where) from None
    return configs


def plan_overrides(overrides: Sequence[str]) -> Plan:
    """Compose and plan every combination of ``overrides``."""
    combos = expand_overrides(overrides)
    swept_keys = list(combos[0][0])
    contexts = [_context(swept) for swept, _ in combos]
    configs = compose_configs([lines for _, lines in combos], contexts)
    curves = []
    for (swept, _), context, cfg in zip(combos, contexts, configs, strict=True):
        try:
            curve = plan_curve(cfg, context or str(cfg.schedule.name))
        except ConfigError as err:
            if not context:
                raise
            detail = str(err).removeprefix(f"{err.key}: ")
            raise ConfigError(err.key, f"{detail} (with {context})") from None
        curve.swept = dict(swept)
        curves.append(curve)
    return Plan(curves, swept_keys)


# --------------------------------------------------------------------------- drawing


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _set_lr_scale(ax: Axes, log: bool) -> None:
    if log:
        ax.set_yscale("log", nonpositive="mask")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)


def _draw_momentum(ax: Axes, curves: Sequence[Curve], colors: Sequence[Any]) -> Axes | None:
    """Momentum of the curves that cycle it, dotted on a right-hand axis (None if none do)."""
    cycled = [(c, color) for c, color in zip(curves, colors, strict=True) if c.momentum]
    if not cycled:
        return None
    right = ax.twinx()
    for curve, color in cycled:
        assert curve.momentum is not None
        right.plot(curve.momentum, color=color, linestyle=":", linewidth=1.2)
    right.set_ylabel("momentum (dotted)", color="0.35", fontsize=9)
    right.tick_params(axis="y", colors="0.35", labelsize=8)
    return right


def _common_context(curves: Sequence[Curve]) -> list[str]:
    keys = ("dataset", "steps_per_epoch", "steps", "optimizer")
    return [
        curves[0].context[k]
        for k in keys
        if all(c.context.get(k) == curves[0].context.get(k) for c in curves)
    ]


def figure_for(plan: Plan, log: bool = False) -> Figure:
    """One axis with every curve of ``plan`` (metric-driven ones dashed)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    curves = plan.curves
    fig = _new_figure(10, 5.6)
    ax = fig.add_subplot()
    colors = _colors(len(curves))
    for curve, color in zip(curves, colors, strict=True):
        label = plan.legend_label(curve) + (" (metric-driven)" if curve.metric_driven else "")
        ax.plot(
            range(curve.total),
            curve.lrs,
            color=color,
            linewidth=1.8,
            linestyle="--" if curve.metric_driven else "-",
            label=label,
        )
    _set_lr_scale(ax, log)
    ax.set_xlim(0, max(c.total for c in curves) - 1 or 1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    per_epoch = {c.steps_per_epoch for c in curves}
    if len(per_epoch) == 1:
        spe = per_epoch.pop()

        def to_epochs(steps: Any) -> Any:
            return steps / spe

        def to_steps(epochs: Any) -> Any:
            return epochs * spe

        top = ax.secondary_xaxis("top", functions=(to_epochs, to_steps))
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        top.set_xlabel("epoch")
    handles, labels = ax.get_legend_handles_labels()
    if any(c.metric_driven for c in curves):
        handles.append(Line2D([], [], color="0.35", linestyle="--"))
        labels.append("dashed: pre-validation value")
    if _draw_momentum(ax, curves, colors) is not None:
        handles.append(Line2D([], [], color="0.35", linestyle=":"))
        labels.append("momentum (right axis)")
    context = _common_context(curves)
    title = "Planned learning rate per optimizer step"
    if context:
        title += "\n" + ", ".join(context)
    ax.set_title(title, fontsize=10.5)
    # outside the axes, so it never hides a curve however many are overlaid
    many = len(handles) > 10
    fig.legend(
        handles,
        labels,
        loc="outside lower center" if many else "outside right upper",
        ncols=min(3, math.ceil(len(handles) / 6)) if many else 1,
        title=", ".join(plan.swept_keys) or None,
        fontsize=9,
        title_fontsize=9,
    )
    return fig


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


MOMENTUM_KEYS = ("cycle_momentum", "base_momentum", "max_momentum")


def describe(curve: Curve, unit: str) -> str:
    """``name=value`` of the family's parameters (epoch durations marked ``ep``), + warmup."""
    durations = getattr(REGISTRY.get(curve.family), "durations", ())
    parts = []
    for key, value in curve.params.items():
        if value is None or value is False or key in ("monitor", "mode", *MOMENTUM_KEYS):
            continue
        text = _format_value(value)
        if unit == "epoch" and key in durations:
            text += "ep"
        parts.append(f"{key}={text}")
    if curve.momentum:
        low, high = curve.params.get("base_momentum"), curve.params.get("max_momentum")
        span = f" {_format_value(low)}-{_format_value(high)}" if low is not None else ""
        parts.append(f"momentum{span} cycled")
    if curve.warmup_steps:
        parts.append(f"warmup {curve.warmup_steps} steps")
    return ", ".join(parts) or "no parameters"


def _bold(text: str) -> str:
    """Mathtext bold (matplotlib titles take one weight per text)."""
    return r"$\mathbf{" + text.replace("_", r"\_") + "}$"


def gallery_families() -> list[str]:
    """Every family with a config in ``conf/schedule``, in gallery order."""
    from lrexp.cli import config_dir

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
    return [
        (plan_curve(cfg, name), str(cfg.schedule.get("unit", "step")))
        for name, cfg in zip(families, configs, strict=True)
    ]


def gallery_figure(panels: Sequence[tuple[Curve, str]], log: bool = False) -> Figure:
    """A grid with one panel per family; the spare cell explains how to read it."""
    n = len(panels)
    ncols = 5 if n > 12 else 4
    nrows = math.ceil((n + 1) / ncols)
    fig = _new_figure(4.0 * ncols, 3.25 * nrows)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
    color = _colors(1)[0]
    for ax, (curve, unit) in zip(axes, panels, strict=False):
        ax.plot(
            range(curve.total),
            curve.lrs,
            color="tab:red" if curve.metric_driven else color,
            linewidth=1.8,
            linestyle="--" if curve.metric_driven else "-",
            label=f"pre-validation value\n(reacts to {curve.monitor})"
            if curve.metric_driven
            else None,
        )
        if curve.warmup_steps:
            ax.axvspan(0, curve.warmup_steps, color="tab:orange", alpha=0.15, label="warmup")
        _set_lr_scale(ax, log)
        if curve.metric_driven or curve.warmup_steps:
            ax.legend(fontsize=8, loc="lower left" if curve.metric_driven else "best")
        _draw_momentum(ax, [curve], [color])
        name = _bold(curve.family) + ("  (metric-driven)" if curve.metric_driven else "")
        params = textwrap.fill(describe(curve, unit), width=50, max_lines=3, placeholder=" ...")
        ax.set_title(f"{name}\n{params}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    for ax in axes[:n]:
        ax.set_xlim(0, max(c.total for c, _ in panels) - 1 or 1)
    for ax in axes[n:]:
        ax.axis("off")
    for i, ax in enumerate(axes[:n]):
        if i % ncols == 0:
            ax.set_ylabel("learning rate", fontsize=9)
        if i + ncols >= n:
            ax.set_xlabel("optimizer step", fontsize=9)
            ax.xaxis.set_tick_params(labelbottom=True)
    curves = [c for c, _ in panels]
    context = _common_context(curves)
    fig.suptitle("lrexp schedule families: planned LR per optimizer step", fontsize=14)
    if n < len(axes):
        note = "\n".join(
            [
                "How to read:",
                *textwrap.wrap("run: " + ", ".join(context), width=40),
                "y: optimizer.lr x schedule multiplier",
                "solid: the planned LR of each step",
                "dashed: metric-driven, as planned before",
                "  any validation; the real curve reacts",
                "  to the monitored metric",
                "shaded: warmup  |  dotted: momentum",
                "ep = duration given in epochs",
                "",
                "python -m lrexp.plot_schedules --gallery",
            ]
        )
        axes[n].text(0.02, 0.98, note, va="top", ha="left", fontsize=9, family="monospace")
    return fig


def write_csv(curves: Sequence[Curve], path: str | Path) -> Path:
    """``step`` then one LR column per curve (empty past a shorter curve's end)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *(c.label for c in curves)])
        for step in range(max(c.total for c in curves)):
            writer.writerow([step, *(repr(c.lrs[step]) if step < c.total else "" for c in curves)])
    return path


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


# --------------------------------------------------------------------------- command line


def one_line(err: BaseException) -> str:
    """A Hydra/OmegaConf message on one line (option lists joined, search path dropped)."""
    text = str(err).split("Config search path:")[0]
    parts: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("See https://"):
            continue
        if line[:1].isspace() and parts:
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + stripped
        else:
            parts.append(stripped)
    text = ""
    for part in parts:
        text += ("" if not text else " " if text.endswith((".", ":")) else "; ") + part
    return text or type(err).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrexp-plot-schedules",
        description="Draw the planned learning-rate curve of a configuration without training. "
        "Takes the same Hydra overrides as train.py; comma lists (schedule=step,cosine) "
        "overlay every combination.",
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra override")
    parser.add_argument("--out", type=Path, default=Path("schedule.png"), help="PNG to write")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="also write step,lr per curve")
    parser.add_argument("--log", action="store_true", help="logarithmic LR axis")
    parser.add_argument(
        "--gallery", type=Path, metavar="PATH", help="draw every schedule family into PATH"
    )
    parser.add_argument("-m", "--multirun", action="store_true", help=argparse.SUPPRESS)
    return parser


def _note(message: str) -> None:
    print(f"lrexp: note: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> Iterator[str]:
    """Do the work; yield the lines to print on stdout."""
    if args.gallery is not None:
        panels = plan_gallery(args.overrides)
        curves = [curve for curve, _ in panels]
        path = save(gallery_figure(panels, log=args.log), args.gallery)
        yield f"wrote {path}: {len(panels)} schedule families"
    else:
        plan = plan_overrides(args.overrides)
        curves = plan.curves
        for curve in curves:
            for note in curve.notes:
                _note(note if len(curves) == 1 else f"[{curve.label}] {note}")
        peaks = [max(c.lrs) for c in curves]
        if not args.log and min(peaks) > 0 and max(peaks) / min(peaks) > 30:
            _note("the curves' peak LRs differ by more than 30x; --log shows them all")
        path = save(figure_for(plan, log=args.log), args.out)
        longest = max(c.total for c in curves)
        yield f"wrote {path}: {len(curves)} curve(s) over {longest} optimizer steps"
    if args.csv is not None:
        yield f"wrote {write_csv(curves, args.csv)}"


def main(argv: Sequence[str] | None = None) -> int:
    """``lrexp-plot-schedules`` / ``python -m lrexp.plot_schedules``; returns the exit status."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = _parser().parse_intermixed_args(argv)
    try:
        for line in _run(args):
            print(line)
    except ConfigError as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        print(f"lrexp: error: {one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
