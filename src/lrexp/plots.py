"""PNG figures for one run (LR plan vs trace, learning curves) and for run comparisons.

Matplotlib is imported inside the functions, so ``import lrexp.plots`` stays cheap. Figures are
drawn on an explicit Agg canvas (``matplotlib.figure.Figure``), never through ``pyplot``: no
global backend is switched and no figure is kept alive in a pyplot registry.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Point = tuple[int, float]
DPI = 110
LOG_DECADES = 2.0  # a log LR axis once max/min of the positive values exceeds 10**LOG_DECADES


def wants_log_scale(values: Iterable[float], decades: float = LOG_DECADES) -> bool:
    """True when the finite positive ``values`` span more than ``decades`` powers of ten."""
    positive = [v for v in values if math.isfinite(v) and v > 0]
    if not positive:
        return False
    return max(positive) / min(positive) > 10.0**decades


#: a log axis spanning fewer powers of ten than this is labelled in plain decimals
PLAIN_DECADES = 2.0


@functools.cache
def plain_log_formatter() -> type:
    """matplotlib's log formatter, with plain decimals where the view spans fewer than
    :data:`PLAIN_DECADES` powers of ten (built on first use: matplotlib is imported lazily)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        def __call__(self, x: float, pos: int | None = None) -> str:
            label = super().__call__(x, pos)
            low, high = sorted(self.axis.get_view_interval()) if self.axis else (0.0, 0.0)
            if label and low > 0 and high / low < 10.0**PLAIN_DECADES:
                return f"{x:.3g}"
            return str(label)

    return PlainLogFormatter


def log_scale(ax: Axes, which: str = "y", **options: Any) -> None:
    """Make ``which`` axis of ``ax`` logarithmic. Where its view spans fewer than
    :data:`PLAIN_DECADES` powers of ten (a loss axis), ticks read as plain decimals (``1.4``,
    not ``1.4 × 10⁰``); wider ones keep matplotlib's powers of ten."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log", **options)
    formatter = plain_log_formatter()
    axis.set_major_formatter(formatter(10.0))
    axis.set_minor_formatter(formatter(10.0, labelOnlyBase=False))


def new_figure(width: float, height: float) -> Figure:
    """A figure bound to an Agg canvas (no pyplot state, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG, creating the parent directory."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out


def split_points(points: Sequence[Point]) -> tuple[list[int], list[float]]:
    return [int(s) for s, _ in points], [float(v) for _, v in points]


def envelope(
    steps: Sequence[int], values: Sequence[float], max_points: int = 4000
) -> tuple[list[int], list[float]]:
    """At most ~``max_points`` points that draw like the full line at figure resolution.

    Long traces are cut into ``max_points/4`` buckets; each keeps its first, lowest, highest and
    last point in step order, so spikes, restarts and cycles shorter than a pixel survive
    (plain striding would alias them away). Short traces come back unchanged.
    """
    n = len(values)
    if n <= max_points:
        return list(steps), list(values)
    import numpy as np

    x = np.asarray(steps)
    y = np.asarray(values, dtype=float)
    size = math.ceil(n / (max_points // 4))
    buckets = math.ceil(n / size)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    grid = padded.reshape(buckets, size)
    starts = np.arange(buckets) * size
    lowest = np.where(np.isnan(grid), np.inf, grid).argmin(axis=1)
    highest = np.where(np.isnan(grid), -np.inf, grid).argmax(axis=1)
    ends = np.minimum(starts + size, n) - 1
    keep = np.concatenate([starts, starts + lowest, starts + highest, ends])
    index = np.unique(np.minimum(keep, n - 1))
    return x[index].tolist(), y[index].tolist()


def max_relative_gap(planned: Sequence[float], observed: Sequence[Point]) -> float | None:
    """Largest ``|observed/planned - 1|`` over the steps both cover (absolute where planned=0)."""
    gaps = []
    for step, value in observed:
        if 0 <= step < len(planned):
            want = float(planned[step])
            gaps.append(abs(value - want) / abs(want) if want else abs(value))
    return max(gaps) if gaps else None


def plot_lr_plan(
    planned: Sequence[float],
    observed: Sequence[Point] | None,
    path: str | Path,
    title: str,
) -> Path:
    """Planned LR (index = optimizer step) against the observed per-step trace.

    The y axis is logarithmic when the curves span more than two decades. When a trace is
    given, the legend reports the largest relative gap between the two over their common steps.
    """
    fig = new_figure(8.0, 4.5)
    ax = fig.add_subplot()
    values = [float(v) for v in planned]
    ax.plot(range(len(values)), values, color="tab:blue", linewidth=2.2, label="planned")
    everything = list(values)
    if observed:
        steps, seen = split_points(observed)
        everything += seen
        gap = max_relative_gap(values, observed)
        label = "observed" if gap is None else f"observed (max rel. gap {gap:.1e})"
        style: dict[str, Any] = (
            {"linestyle": "none", "marker": "o", "markersize": 3}
            if len(seen) <= 200
            else {"linestyle": "--", "linewidth": 1.2}
        )
        ax.plot(steps, seen, color="tab:orange", label=label, **style)
    if wants_log_scale(everything):
        log_scale(ax)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best")
    return save(fig, path)


def curve_panel(key: str) -> str | None:
    """``loss`` or ``acc`` panel for a metric key such as ``val/loss`` (None: not drawn)."""
    leaf = key.rsplit("/", 1)[-1].lower()
    if "loss" in leaf:
        return "loss"
    if "acc" in leaf:
        return "acc"
    return None


def plot_learning_curves(
    histories: Mapping[str, Sequence[Point]],
    path: str | Path,
    title: str,
) -> Path:
    """Loss (left) and accuracy (right) against optimizer step, one line per metric key.

    ``histories`` maps keys such as ``train/loss``, ``val/acc`` to ``(step, value)`` points;
    keys that are neither a loss nor an accuracy are ignored. A key with a single point (e.g.
    ``test/acc``) is drawn as a star.
    """
    fig = new_figure(12.0, 4.5)
    axes = {"loss": fig.add_subplot(1, 2, 1), "acc": fig.add_subplot(1, 2, 2)}
    colors = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
    for key in sorted(histories):
        panel = curve_panel(key)
        points = sorted(histories[key], key=lambda p: p[0])
        if panel is None or not points:
            continue
        steps, values = split_points(points)
        color = colors.get(key.split("/", 1)[0])
        if len(points) == 1:
            axes[panel].plot(steps, values, "*", markersize=12, color=color, label=key)
        else:
            marker = "o" if len(points) <= 60 else None
            axes[panel].plot(steps, values, marker=marker, markersize=4, color=color, label=key)
    for panel, ax in axes.items():
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss" if panel == "loss" else "accuracy")
        ax.set_title(f"{title}: {'loss' if panel == 'loss' else 'accuracy'}")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(loc="best")
    return save(fig, path)


@dataclass
class Series:
    """One run's curves in a comparison figure; runs sharing ``label`` share a colour."""

    label: str
    lr: Mapping[str, Sequence[Point]] = field(default_factory=dict)
    val_acc: Sequence[Point] = ()
    val_loss: Sequence[Point] = ()


def palette(n: int) -> list[tuple[Any, str]]:
    """``n`` distinguishable (colour, linestyle) pairs: tab10, then tab20, then line styles."""
    from matplotlib import colormaps

    if n <= 10:
        return [(colormaps["tab10"](i), "-") for i in range(n)]
    if n <= 20:
        return [(colormaps["tab20"](i), "-") for i in range(n)]
    styles = ["-", "--", ":", "-."]
    return [(colormaps["tab20"](i % 20), styles[(i // 20) % len(styles)]) for i in range(n)]


def plot_comparison(series: Sequence[Series], path: str | Path, title: str) -> Path:
    """LR traces (left), val accuracy and val loss (middle, right) of many runs against step.

    Runs with the same label (seeds of one configuration, or one ``--group-by`` value) share a
    colour and one legend entry, placed under the panels so it never hides a curve.
    """
    labels = list(dict.fromkeys(s.label for s in series))
    style = dict(zip(labels, palette(len(labels)), strict=True))
    counts = {label: sum(1 for s in series if s.label == label) for label in labels}
    fig = new_figure(18.0, 5.2)
    ax_lr, ax_acc, ax_loss = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    lr_values: list[float] = []
    handles: dict[str, Any] = {}
    for s in series:
        color, linestyle = style[s.label]
        for points in s.lr.values():
            steps, values = split_points(points)
            lr_values += values
            steps, values = envelope(steps, values)
            (line,) = ax_lr.plot(steps, values, color=color, linestyle=linestyle, linewidth=1.4)
            handles.setdefault(s.label, line)
        for ax, points in ((ax_acc, s.val_acc), (ax_loss, s.val_loss)):
            if not points:
                continue
            steps, values = split_points(points)
            marker = "o" if len(points) <= 40 else None
            (line,) = ax.plot(
                steps,
                values,
                color=color,
                linestyle=linestyle,
                marker=marker,
                markersize=3.5,
                linewidth=1.4,
                alpha=0.9,
            )
            handles.setdefault(s.label, line)
    if wants_log_scale(lr_values):
        log_scale(ax_lr)
    decorate(ax_lr, "learning rate", "learning rate (per step)")
    decorate(ax_acc, "val accuracy", "validation accuracy")
    decorate(ax_loss, "val loss", "validation loss")
    if wants_log_scale([v for s in series for _, v in s.val_loss], decades=1.5):
        log_scale(ax_loss)
    fig.suptitle(title, fontsize=13)
    if handles:
        entries = [
            (handles[label], f"{label} (n={counts[label]})" if counts[label] > 1 else label)
            for label in labels
            if label in handles
        ]
        longest = max(len(text) for _, text in entries)
        ncol = max(1, min(len(entries), int(16 / (0.075 * longest + 0.8)), 6))  # inches
        rows = math.ceil(len(entries) / ncol)
        fig.set_size_inches(18.0, 5.2 + 0.24 * rows)
        fig.legend(
            [h for h, _ in entries],
            [t for _, t in entries],
            loc="lower center",
            ncol=ncol,
            frameon=False,
            fontsize=9,
            bbox_to_anchor=(0.5, 0.0),
        )
        fig.subplots_adjust(bottom=(0.24 * rows + 0.62) / (5.2 + 0.24 * rows), top=0.88)
    return save(fig, path)


def decorate(ax: Axes, ylabel: str, title: str) -> None:
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
