"""The headline figures: the forest plot of Δ and the learning-curve small multiples.

Matplotlib is imported inside the functions (through :mod:`lrexp.plots`), so importing the
compare package stays cheap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lrexp.compare.analysis import Analysis, Config
from lrexp.compare.common import Point
from lrexp.compare.records import RunRecord

VERDICT_COLORS = {
    "better": "#1a9850",
    "worse": "#d73027",
    "equivalent": "#4575b4",
    "inconclusive": "#7f7f7f",
    "baseline": "#000000",
}
MAX_CURVES = 8  # curves per learning-curve panel
LR_POINTS = 1500  # points per LR curve after thinning


def forest(analysis: Analysis, path: Path) -> Path:
    """Δ against the baseline with its 95 % CI, one row per configuration, best at the top,
    coloured by verdict; the grey band is the equivalence margin."""
    from matplotlib.lines import Line2D

    from lrexp.plots import new_figure, save

    rows = [c for c in analysis.configs if c.description.n > 0]
    fig = new_figure(9.0, 1.2 + 0.32 * len(rows))
    ax = fig.add_subplot(1, 1, 1)
    for y, config in enumerate(rows):
        comp = analysis.comparisons.get(config.label)
        if comp is None:
            ax.plot([0], [y], "D", color=VERDICT_COLORS["baseline"])
            continue
        s = comp.stats
        color = VERDICT_COLORS[comp.decision.verdict]
        if math.isfinite(s.delta_low) and math.isfinite(s.delta_high):
            ax.plot([s.delta_low, s.delta_high], [y, y], color=color, linewidth=2.2)
        ax.plot([s.delta], [y], "o" if s.paired else "s", color=color, markersize=6)
    if math.isfinite(analysis.margin):
        ax.axvspan(-analysis.margin, analysis.margin, color="0.85", zorder=0)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [c.label for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"Δ {analysis.outcome.label} vs {analysis.baseline} (95% CI)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"{analysis.outcome.label}: difference to the baseline", fontsize=11)
    handles = [Line2D([], [], color=c, marker="o", linestyle="") for c in VERDICT_COLORS.values()]
    ax.legend(
        handles, list(VERDICT_COLORS), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8
    )  # beside the axes: no row hidden behind it
    return save(fig, path)


def thin(points: Sequence[Point], limit: int) -> list[Point]:
    stride = max(1, math.ceil(len(points) / limit))
    return list(points[::stride]) + ([points[-1]] if (len(points) - 1) % stride else [])


def curve(run: RunRecord, key: str) -> list[Point]:
    """A run's ``key`` history; for ``lr`` its first LR key (``lr``, or the first group's)."""
    if key == "lr":
        lr = run.lr
        return thin(lr[min(lr)], LR_POINTS) if lr else []
    return list(run.history.get(key, []))


def mean_band(curves: Sequence[Sequence[Point]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean and half-width of a 95 % t interval over seeds, on the steps of the first
    curve (the others interpolated onto them); zero half-width for a single seed."""
    from scipy.stats import t as student_t

    steps = np.array([s for s, _ in curves[0]], dtype=float)
    stack = np.vstack(
        [
            np.interp(steps, [s for s, _ in c], [v for _, v in c], left=np.nan, right=np.nan)
            for c in curves
        ]
    )
    n = np.sum(np.isfinite(stack), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps that one seed or none reached
        mean = np.nanmean(stack, axis=0)
        if len(curves) < 2:
            return steps, mean, np.zeros_like(mean)
        sd = np.nanstd(stack, axis=0, ddof=1)
        half = student_t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    return steps, mean, np.where(n > 1, half, 0.0)


def band(key: str, mean: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The band ``mean ± half`` kept inside the metric's range: accuracies in [0, 1]; losses,
    errors and LRs at or above 0 (a t interval over 2 seeds is wide enough to leave them)."""
    name = key.rsplit("/", 1)[-1]
    low = 0.0 if name.startswith(("acc", "loss", "mse", "excess", "lr")) else -np.inf
    high = 1.0 if name.startswith("acc") else np.inf
    return np.clip(mean - half, low, high), np.clip(mean + half, low, high)


def panels(analysis: Analysis) -> list[tuple[str, list[Config]]]:
    """Configurations by panel (``--group-by`` value, else the optimizer), at most
    :data:`MAX_CURVES` per panel, split into balanced chunks."""
    by_panel: dict[str, list[Config]] = {}
    for c in analysis.configs:
        first = next(iter(c.runs.values()))
        key = c.panel or first.params.get("optimizer.name") or first.tags.get("optimizer") or ""
        by_panel.setdefault(key, []).append(c)
    out = []
    for key, members in by_panel.items():
        chunks = math.ceil(len(members) / MAX_CURVES)
        size = math.ceil(len(members) / chunks)
        for i in range(chunks):
            part = f" ({i + 1}/{chunks})" if chunks > 1 else ""
            out.append(
                (f"{key}{part}" if key else f"configurations{part}", members[i * size :][:size])
            )
    return out


def learning_curves(analysis: Analysis, path: Path) -> Path:
    """Small multiples: one row per panel, columns the runs' objective (val/acc; val/mse for
    regression), val/loss (unless it is the objective, as for language models) and LR; each
    curve is a configuration's mean over seeds with its
    95 % CI band."""
    from lrexp.compare.outcomes import objective_metric
    from lrexp.plots import log_scale, new_figure, palette, save, wants_log_scale

    groups = panels(analysis)
    records = [run for config in analysis.configs for run in config.runs.values()]
    objective = objective_metric(records)
    columns = tuple(dict.fromkeys((objective, "val/loss", "lr")))  # val/loss once (an LM's)
    width = len(columns)
    fig = new_figure(17.0 * width / 3, 0.6 + 3.3 * len(groups))
    for r, (title, members) in enumerate(groups):
        axes = [fig.add_subplot(len(groups), width, width * r + i + 1) for i in range(width)]
        for (color, style), config in zip(palette(len(members)), members, strict=True):
            for ax, key in zip(axes, columns, strict=True):
                curves = [c for run in config.runs.values() if (c := curve(run, key))]
                if not curves:
                    continue
                steps, mean, half = mean_band(curves)
                label = f"{config.label} (n={len(curves)})" if ax is axes[0] else None
                ax.plot(steps, mean, color=color, linestyle=style, linewidth=1.3, label=label)
                ax.fill_between(steps, *band(key, mean, half), color=color, alpha=0.18)
        for ax, key in zip(axes, columns, strict=True):
            ax.set_title(f"{title}: {key}", fontsize=10)
            ax.set_xlabel("optimizer step")
            ax.grid(True, alpha=0.3)
            values = [float(v) for line in ax.get_lines() for v in np.ravel(line.get_ydata())]
            if key != objective and wants_log_scale(
                values, decades=1.5 if key == "val/loss" else 2
            ):
                log_scale(ax)
        axes[0].legend(fontsize=7, loc="best", framealpha=0.85)
    height = fig.get_figheight()  # inches: the title 0.15 below the top, the panels 0.65
    fig.suptitle(
        "learning curves: mean over seeds with 95% CI bands", fontsize=12, y=1 - 0.15 / height
    )
    fig.subplots_adjust(hspace=0.45, top=1 - 0.65 / height)
    return save(fig, path)
