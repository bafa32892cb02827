"""Figures of planned curves: one overlay per command line, or the gallery of families.

Matplotlib is imported inside the functions; figures are plain ``Figure`` objects (no pyplot state).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrexp.plot_schedules.curves import Curve, Plan
from lrexp.plots import log_scale
from lrexp.schedules import REGISTRY

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _set_lr_scale(ax: Axes, log: bool) -> None:
    if log:
        log_scale(ax, nonpositive="mask")
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


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
