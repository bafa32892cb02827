"""Cooldown forks in a comparison: the envelope figure and the compute table.

A fork (tag ``fork_of``) ends at ``fork_at + fork_length`` steps; its final validation is one
point of its shape's curve of final val loss and accuracy against total steps. The trunks the
forks come from add their own validation curve, and other runs in the selection (full-length
cosine, say) add one curve per schedule. The compute table sets the optimizer steps spent
(each trunk once, plus the forks' cooldowns) against what separate runs of every fork's
length would have cost.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lrexp.compare.common import Point
from lrexp.compare.records import RunRecord

TRUNK = "trunk"
METRICS = ("val/loss", "val/acc")


@dataclass(frozen=True)
class Final:
    """One run's final validation: its curve, length in optimizer steps and metrics."""

    curve: str  #: ``<shape> cooldown``, ``trunk`` or the schedule name of a reference run
    steps: int
    seed: str | None
    values: dict[str, float]


@dataclass(frozen=True)
class Compute:
    """Optimizer steps of a fork study, spent and as separate runs."""

    trunks: int
    trunk_steps: int
    forks: int
    fork_steps: int  #: the cooldowns only
    separate_steps: int  #: each fork's full length, as if trained from scratch

    @property
    def spent(self) -> int:
        return self.trunk_steps + self.fork_steps

    @property
    def saving(self) -> float:
        return self.separate_steps / self.spent if self.spent else float("nan")


def last(points: Sequence[Point]) -> Point | None:
    return max(points, key=lambda p: p[0]) if points else None


def run_steps(record: RunRecord) -> int:
    """Optimizer steps a run took: one ``lr`` point per step (0-based), else its last
    validation step."""
    lr_steps = [step for points in record.lr.values() for step, _ in points]
    if lr_steps:
        return max(lr_steps) + 1
    final = last(record.history.get("val/acc", []))
    return final[0] if final else 0


def finals(records: Sequence[RunRecord]) -> list[Final]:
    """Every fork's and reference run's final validation, and every trunk validation."""
    forks = [r for r in records if r.tags.get("fork_of")]
    trunk_ids = {r.tags["fork_of"] for r in forks}
    points: list[Final] = []
    for record in records:
        history = {key: record.history.get(key, []) for key in METRICS}
        if record.run_id in trunk_ids:
            by_step: dict[int, dict[str, float]] = defaultdict(dict)
            for key, series in history.items():
                for step, value in series:
                    by_step[step][key] = value
            points += [Final(TRUNK, step, record.seed, v) for step, v in sorted(by_step.items())]
            continue
        ends = {key: last(series) for key, series in history.items()}
        values = {key: p[1] for key, p in ends.items() if p is not None}
        if not values:
            continue
        if record.tags.get("fork_of"):
            shape = record.tags.get("fork_shape", "?")
            curve = "merge" if shape == "merge" else f"{shape} cooldown"
            steps = int(record.tags["fork_at"]) + int(record.tags["fork_length"])
        else:
            curve = record.params.get("schedule.name", record.base_name)
            steps = max(p[0] for p in ends.values() if p is not None)
        points.append(Final(curve, steps, record.seed, values))
    return points


def compute(records: Sequence[RunRecord]) -> Compute | None:
    """The compute table's numbers (None without forks). A trunk outside the selection counts
    up to the furthest step its forks start from."""
    forks = [r for r in records if r.tags.get("fork_of")]
    if not forks:
        return None
    by_id = {r.run_id: r for r in records}
    reach: dict[str, int] = defaultdict(int)
    for fork in forks:
        trunk = fork.tags["fork_of"]
        reach[trunk] = max(reach[trunk], int(fork.tags["fork_at"]))
    trunk_steps = sum(
        run_steps(by_id[trunk]) if trunk in by_id else furthest for trunk, furthest in reach.items()
    )
    lengths = [int(f.tags["fork_length"]) for f in forks]
    totals = [int(f.tags["fork_at"]) + n for f, n in zip(forks, lengths, strict=True)]
    return Compute(len(reach), trunk_steps, len(forks), sum(lengths), sum(totals))


def summarize(points: Sequence[Final]) -> dict[str, dict[int, dict[str, tuple[float, float, int]]]]:
    """curve -> steps -> metric -> (mean, sample sd (0 for one run), n) over seeds."""
    grouped: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for point in points:
        for key, value in point.values.items():
            grouped[point.curve][point.steps][key].append(value)
    return {
        curve: {
            steps: {
                key: (
                    statistics.fmean(values),
                    statistics.stdev(values) if len(values) > 1 else 0.0,
                    len(values),
                )
                for key, values in metrics.items()
            }
            for steps, metrics in sorted(by_steps.items())
        }
        for curve, by_steps in grouped.items()
    }


def write_envelope(records: Sequence[RunRecord], out: Path, title: str) -> list[Path]:
    """``envelope.png`` and ``envelope.md`` when the selection holds forks, else nothing."""
    budget = compute(records)
    if budget is None:
        return []
    table = summarize(finals(records))
    return [
        plot_envelope(table, out / "envelope.png", title),
        write_table(table, budget, out / "envelope.md", title),
    ]


def write_table(
    table: dict[str, dict[int, dict[str, tuple[float, float, int]]]],
    budget: Compute,
    path: Path,
    title: str,
) -> Path:
    """The envelope as a Markdown table (one row per length, one column per curve) and the
    compute table."""
    curves = sorted(c for c in table if c != TRUNK)
    lengths = sorted({steps for c in curves for steps in table[c]})
    lines = [f"# {title}: cooldown envelope", ""]
    for key in METRICS:
        if not any(key in values for c in curves for values in table[c].values()):
            continue  # a metric no run logs (accuracy, for a language model)
        lines += [
            f"Final {key} (mean ± sd over seeds, n):",
            "",
            "| steps | " + " | ".join(f"`{c}`" for c in curves) + " |",
            "|---:|" + "---:|" * len(curves),
        ]
        for steps in lengths:
            cells = []
            for curve in curves:
                cell = table[curve].get(steps, {}).get(key)
                cells.append(f"{cell[0]:.4f} ± {cell[1]:.4f} ({cell[2]})" if cell else "")
            lines.append(f"| {steps} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "Compute (optimizer steps):",
        "",
        "| | runs | steps |",
        "|---|---:|---:|",
        f"| trunks, once each | {budget.trunks} | {budget.trunk_steps} |",
        f"| cooldown forks | {budget.forks} | {budget.fork_steps} |",
        f"| **spent: trunks + forks** | | **{budget.spent}** |",
        f"| separate runs of the forks' lengths | {budget.forks} | {budget.separate_steps} |",
        f"| separate / spent | | {budget.saving:.2f}x |",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def plot_envelope(
    table: dict[str, dict[int, dict[str, tuple[float, float, int]]]], path: Path, title: str
) -> Path:
    """Final val loss (left) and accuracy (right) against total steps, log-x: a line with
    ±sd bars per cooldown shape and reference schedule, the trunk's curve dashed."""
    from lrexp.plots import log_scale, new_figure, palette, save

    fig = new_figure(13.0, 5.0)
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    curves = sorted(table, key=lambda c: (c == TRUNK, c))
    colors = dict(zip(curves, palette(len(curves)), strict=True))
    # the trunk only where the runs end: its first validations would squash the y-axis
    shortest = min((s for c in curves if c != TRUNK for s in table[c]), default=0)
    for curve in curves:
        color = colors[curve][0]
        steps = [s for s in table[curve] if curve != TRUNK or s >= shortest / 1.5]
        for ax, key in zip(axes, METRICS, strict=True):
            present = [s for s in steps if key in table[curve][s]]
            means = [table[curve][s][key][0] for s in present]
            sds = [table[curve][s][key][1] for s in present]
            if curve == TRUNK:
                ax.plot(present, means, color="0.45", linestyle="--", label="trunk (no cooldown)")
            else:
                ax.errorbar(
                    present, means, yerr=sds, color=color, marker="o", capsize=3, label=curve
                )
    lengths = sorted({s for c in curves if c != TRUNK for s in table[c]})
    for ax, key in zip(axes, METRICS, strict=True):
        log_scale(ax, "x")
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.minorticks_off()
        ax.set_xlabel("total optimizer steps")
        ax.set_ylabel(f"final {key}")
        ax.grid(True, alpha=0.3)
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{title}: cooldown envelope (mean ± sd over seeds)")
    return save(fig, path)
