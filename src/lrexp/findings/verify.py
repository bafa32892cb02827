"""``lrexp-predict optimize`` on the language model, checked by paired runs: the schedule the
Multi-Power Law fitted on the study synthesizes (at the laws' peak LR, the study's warmup and
length), run for ``--verify-seeds`` seeds, against the better of cosine and WSD (each at its
own best LR, by the study's final ``val_full/loss``), with the predicted and measured gain."""

from __future__ import annotations

import ast
import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from lrexp.compare.stats.pairwise import verdict
from lrexp.findings.claims import LOSS
from lrexp.findings.results import Paired, Results, pair_by_seed

#: the schedules the synthesized one must beat: the better of the two, each at its best LR
RIVALS = ("lm_cosine", "lm_wsd_linear")
METRICS = ("val/loss", LOSS)


@dataclass(frozen=True)
class Table:
    """A tabulated schedule: ``values`` of the peak at fractions ``at`` of the decay."""

    at: tuple[float, ...]
    values: tuple[float, ...]

    def overrides(self) -> list[str]:
        return [
            f"schedule.at=[{','.join(map(repr, self.at))}]",
            f"schedule.values=[{','.join(map(repr, self.values))}]",
        ]

    def matches(self, logged: str | None) -> bool:
        """Whether a run's logged ``schedule.values`` param is this table's."""
        if logged is None:
            return False
        try:
            values = [float(v) for v in ast.literal_eval(logged)]
        except (ValueError, SyntaxError, TypeError):
            return False
        return len(values) == len(self.values) and bool(
            np.allclose(values, self.values, rtol=1e-12, atol=0)
        )


def synthesize(fit_path: Path, lr: float, out: Path) -> tuple[Table, list[str]]:
    """``lrexp-predict optimize --law mpl`` for the study's cosine configuration at ``lr``:
    the table it writes, and what it printed."""
    from lrexp.predict.cli import main as predict_main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = predict_main(
            [
                "optimize",
                "--fit",
                str(fit_path),
                "--law",
                "mpl",
                "--out",
                str(out),
                "experiment=lm_findings",
                "study_arm=lm_cosine",
                f"optimizer.lr={lr}",
            ]
        )
    if status != 0:
        raise SystemExit(f"lm_findings: lrexp-predict optimize failed ({status})")
    written = yaml.safe_load((out / "tabulated.yaml").read_text())
    table = Table(tuple(map(float, written["at"])), tuple(map(float, written["values"])))
    return table, printed.getvalue().splitlines()


def rival(results: Results, best: dict[str, float], seeds: int) -> str:
    """The better of :data:`RIVALS` by the mean final ``val_full/loss`` of its first ``seeds``
    seeds at its best LR."""

    def mean(arm: str) -> float:
        values = [v for s, v in results.seeds_of(arm, best[arm], LOSS).items() if s < seeds]
        return float(np.mean(values)) if values else math.inf

    return min(RIVALS, key=mean)


@dataclass
class VerifyRow:
    """The synthesized schedule against its rival on one metric (lower loss is better)."""

    metric: str
    paired: Paired  #: optimized − rival, paired by seed
    verdict: str


def verify_rows(
    optimized: dict[int, dict[str, float]],
    rival_runs: dict[int, dict[str, float]],
    margin: float,
) -> list[VerifyRow]:
    """Paired by seed, per metric of :data:`METRICS`."""
    rows = []
    for metric in METRICS:
        paired = pair_by_seed(
            {s: m[metric] for s, m in optimized.items() if metric in m},
            {s: m[metric] for s, m in rival_runs.items() if metric in m},
            margin,
        )
        stats = paired.stats
        decided = verdict(stats.delta, stats.p, stats.tost_p, higher_is_better=False)
        rows.append(VerifyRow(metric, paired, decided))
    return rows


def verify_table(rows: Sequence[VerifyRow], rival_arm: str, predicted_gain: float) -> list[str]:
    lines = [
        f"| metric | seeds | lm_optimized | {rival_arm} | Δ (95 % CI) | test, p | verdict | "
        "predicted Δ (mpl) |",
        "|---|---:|---:|---:|---|---|---|---:|",
    ]
    for r in rows:
        predicted = f"{predicted_gain:+.4f}" if r.metric == "val/loss" else ""
        p, stats = r.paired, r.paired.stats
        lines.append(
            f"| {r.metric} | {p.seeds} | {p.arm_mean:.4f} | {p.base_mean:.4f} | {stats.delta:+.4f} "
            f"({stats.delta_low:+.4f}, {stats.delta_high:+.4f}) | {stats.test}, {stats.p:.3g} | "
            f"{r.verdict} | {predicted} |"
        )
    return lines
