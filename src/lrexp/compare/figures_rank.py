"""Figures of the ranking: paired per-seed lines, the P(row beats column) heatmap and the
critical-difference diagram."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lrexp.compare.analysis import Analysis
from lrexp.compare.stats import ALPHA

TOP = 8  # configurations in the per-seed figure
HEATMAP_MAX = 40  # configurations in the heatmap (the best by mean)


def paired_lines(analysis: Analysis, path: Path) -> Path:
    """The top configurations (by mean) on the x axis, one line per seed through its values:
    parallel lines mean a consistent difference, crossing lines a seed-dependent one."""
    from lrexp.plots import new_figure, palette, save

    top = [c for c in analysis.configs if c.description.n > 0][:TOP]
    seeds = sorted({s for c in top for s in c.values}, key=lambda s: (len(s), s))
    fig = new_figure(max(7.0, 1.4 * len(top)), 5.0)
    ax = fig.add_subplot(1, 1, 1)
    for (color, _), seed in zip(palette(len(seeds)), seeds, strict=True):
        ys = [c.values.get(seed, math.nan) for c in top]
        ax.plot(range(len(top)), ys, "o-", color=color, alpha=0.7, linewidth=1, markersize=4,
                label=f"seed {seed}")  # fmt: skip
    ax.plot(range(len(top)), [c.description.mean for c in top], "_", color="k", markersize=28)
    ax.set_xticks(range(len(top)), [c.label for c in top], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(analysis.outcome.label)
    ax.set_title(f"per-seed {analysis.outcome.label} of the top {len(top)} (black: mean)")
    ax.grid(True, axis="y", alpha=0.3)
    if 0 < len(seeds) <= 12:
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return save(fig, path)


def heatmap(analysis: Analysis, path: Path) -> Path:
    """P(row beats column) for the best configurations by mean."""
    from lrexp.plots import new_figure, save

    beats = analysis.ranking.beats
    k = min(beats.shape[0], HEATMAP_MAX)
    labels = [c.label for c in analysis.configs[:k]]
    size = 3.0 + 0.32 * k
    fig = new_figure(size + 1.5, size)
    ax = fig.add_subplot(1, 1, 1)
    if k == 0:
        ax.text(0.5, 0.5, "no configuration has a value", ha="center")
        return save(fig, path)
    image = ax.imshow(beats[:k, :k], cmap="RdBu_r", vmin=0.0, vmax=1.0)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if i != j and np.isfinite(beats[i, j]):
                    ink = "white" if abs(beats[i, j] - 0.5) > 0.3 else "black"
                    ax.text(j, i, f"{beats[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color=ink)  # fmt: skip
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    fig.colorbar(image, ax=ax, label="P(row beats column)", shrink=0.8)
    ax.set_title(f"P(row beats column), {analysis.outcome.label}", fontsize=11)
    return save(fig, path)


def cliques(order: list[int], adjusted: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of neighbours in rank order whose every pair the post-hoc cannot tell apart
    (as positions in ``order``)."""
    spans: list[tuple[int, int]] = []
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and all(
            adjusted[order[i], order[end + 1]] >= ALPHA for i in range(start, end + 1)
        ):
            end += 1
        if end > start and not any(a <= start and end <= b for a, b in spans):
            spans.append((start, end))
    return spans


def cd_diagram(analysis: Analysis, path: Path) -> Path:
    """Critical-difference diagram: mean ranks over the seeds every configuration ran
    (1 = best), with a bar joining the configurations that the all-pairs post-hoc (Holm)
    cannot tell apart."""
    from lrexp.plots import new_figure, save

    ranks = np.array(analysis.ranking.mean_ranks, dtype=float)
    k = len(ranks)
    fig = new_figure(10.0, 1.6 + 0.26 * k)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    if k == 0 or not np.all(np.isfinite(ranks)):
        ax.text(0.5, 0.5, "no seed that every configuration ran: no ranks", ha="center")
        return save(fig, path)
    order = [int(i) for i in np.argsort(ranks, kind="stable")]
    labels = [analysis.configs[i].label for i in order]
    lo, hi = 1.0, max(2.0, float(k))
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylim(
        -0.5 * math.ceil(k / 2) - 0.9 - 0.12 * len(cliques(order, analysis.ranking.posthoc)), 1.2
    )
    ax.plot([lo, hi], [0.8, 0.8], color="k", linewidth=1)
    for tick in range(1, int(hi) + 1):
        ax.plot([tick, tick], [0.8, 0.9], color="k", linewidth=1)
        ax.text(tick, 1.0, str(tick), ha="center", fontsize=8)
    spans = cliques(order, analysis.ranking.posthoc)
    for level, (a, b) in enumerate(spans):
        y = 0.55 - 0.12 * level
        ax.plot([ranks[order[a]] - 0.05, ranks[order[b]] + 0.05], [y, y], color="k", linewidth=3)
    half = math.ceil(k / 2)
    for pos, (i, label) in enumerate(zip(order, labels, strict=True)):
        left = pos < half
        y = -0.5 * (pos if left else k - 1 - pos) - 0.6 - 0.12 * len(spans)
        x_text = lo - 0.4 if left else hi + 0.4
        ax.plot([ranks[i], ranks[i], x_text], [0.8, y, y], color="0.3", linewidth=0.8)
        text = f"{label} ({ranks[i]:.2f})"
        ax.text(x_text, y, text, ha="right" if left else "left", va="center", fontsize=8)
    test = analysis.ranking.friedman
    where = f"Friedman p = {test.p:.3g}, " if test is not None else ""
    ax.set_title(
        f"mean rank of {analysis.outcome.label} over {len(analysis.ranking.blocks)} seeds "
        f"({where}bars: not distinguishable, Holm α = {ALPHA})",
        fontsize=10,
    )
    return save(fig, path)
