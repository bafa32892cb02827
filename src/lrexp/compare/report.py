"""The report files: ``summary.md``, ``summary.csv`` and ``summary.json``.

``summary.md`` opens with the verdict table (legend included), the Friedman test, the top
group and the seeds the undecided rows need, then the descriptive table. ``summary.csv`` has
one line per configuration with every number of both tables; ``summary.json`` has every
number of the report (non-finite numbers as ``null``, ``"inf"`` or ``"-inf"``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrexp.compare import columns
from lrexp.compare.analysis import Analysis
from lrexp.compare.descriptive import (
    aligned_table,
    csv_cells,
    csv_header,
    markdown_lines,
    md_cell,
)
from lrexp.compare.records import RunRecord
from lrexp.compare.stats import ALPHA, CONFIDENCE, N_RESAMPLES, SEED
from lrexp.compare.table import Row

FIGURES = (
    ("forest.png", "Δ against the baseline (the headline figure)"),
    ("learning_curves.png", "learning curves, mean over seeds with 95% CI bands"),
    ("paired_seeds.png", "per-seed values of the top configurations"),
    ("beats_heatmap.png", "P(row beats column)"),
    ("cd_diagram.png", "critical-difference diagram"),
    ("comparison.png", "every run overlaid (10 configurations or fewer)"),
)


@dataclass
class Report:
    """What the writers need beside the analysis."""

    title: str
    analysis: Analysis
    rows: list[Row]  # the descriptive rows (configurations, or --group-by values)
    config_rows: list[Row]  # the descriptive rows of the configurations
    n_runs: int
    dropped: Sequence[RunRecord]
    group_by: str | None
    figures: list[str]


def plain(value: Any) -> Any:
    """JSON-safe: NaN to null, infinities to strings, tuples to lists, arrays to lists."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return value


def header_lines(report: Report) -> list[str]:
    a = report.analysis
    direction = "higher" if a.outcome.higher_is_better else "lower"
    margin = f"±{a.margin:.4g} ({a.margin_note})" if math.isfinite(a.margin) else a.margin_note
    lines = [
        f"# {report.title}",
        "",
        f"{report.n_runs} runs, {len(a.configs)} configurations. Tested metric: "
        f"**{a.outcome.label}** ({direction} is better"
        + (f", target {a.target}" if a.target is not None else "")
        + f"). Baseline: **{a.baseline}**. Equivalence margin: {margin}. "
        f"Familywise α = {ALPHA} (Holm over the {a.family_size} comparisons of the verdict "
        f"table); CIs are {CONFIDENCE:.0%} bootstrap intervals ({N_RESAMPLES} resamples, "
        f"seed {SEED}).",
        "",
    ]
    lines += [f"- {note}" for note in [*a.tests, *a.notes]] + ([""] if a.notes or a.tests else [])
    return lines


def ranking_lines(a: Analysis) -> list[str]:
    test = a.ranking.friedman
    if test is None:
        friedman = (
            "Friedman test: not run (it needs 3 configurations and 2 seeds that all of them ran; "
            f"here {len(a.ranking.mean_ranks)} configurations, {len(a.ranking.blocks)} seeds)."
        )
    else:
        friedman = (
            f"Friedman test blocked by seed: χ² = {test.statistic:.3f}, p = {test.p:.3g}, over "
            f"the {test.n_blocks} seeds that all {test.k} configurations ran."
        )
    leader = a.configs[0].label if a.configs else "–"
    return [
        "## Across configurations",
        "",
        f"- {friedman}",
        f"- Top group (not distinguishable from {leader}, the best mean: exact signed-rank "
        "test, rank-sum where the pairing is not proven, Holm over the comparisons with it; "
        "all when Friedman does not reject): " + ", ".join(a.ranking.top_group),
        "- Critical-difference diagram: its bars join configurations that the same test on "
        "every pair, Holm over all pairs, cannot tell apart.",
        "- `P(first)` in the table: how often each configuration has the best mean when the "
        "seeds are resampled (paired bootstrap over seeds when every pair is proven paired).",
        "",
    ]


def seeds_lines(a: Analysis) -> list[str]:
    lines = ["## Seeds needed", ""]
    if a.plan_delta is not None:
        lines.append(
            f"`--plan-seeds {a.plan_delta}`: seeds (pairs; per arm when unpaired) to detect "
            f"Δ = {a.plan_delta} with 80% power after Holm, with each comparison's observed sd:"
        )
        picked = list(a.comparisons.values())
    else:
        lines.append(
            "Seeds each inconclusive comparison needs to detect its observed Δ with 80% power "
            "after Holm (from its observed sd; `--plan-seeds DELTA` plans for a chosen Δ):"
        )
        picked = [c for c in a.comparisons.values() if c.decision.verdict == "inconclusive"]
    lines.append("")
    for c in picked:
        n = c.decision.seeds_needed
        text = columns.fmt(n, "count", ".0f") if not math.isnan(n) else "– (Δ or sd unknown)"
        lines.append(f"- {md_cell(c.arm)}: {text}")
    if not picked:
        lines.append("- none: every comparison is decided")
    return [*lines, ""]


def write_markdown(report: Report, path: Path) -> None:
    a = report.analysis
    table = [columns.cells(a, r) for r in columns.rows(a)]
    headers = [c.header for c in columns.COLUMNS]
    numeric = [c.kind != "text" for c in columns.COLUMNS]
    lines = header_lines(report)
    lines += [f"## Verdicts against {a.baseline}", ""]
    lines += [*aligned_table(headers, [[md_cell(x) for x in t] for t in table], numeric), ""]
    lines += ["Legend:", "", *(f"- {text}" for text in columns.legend()), ""]
    lines += ranking_lines(a) + seeds_lines(a)
    lines += ["## Figures", ""]
    lines += [f"![{text}]({name})" for name, text in FIGURES if name in report.figures]
    lines += ["", "## All numbers (mean ± sd)", ""]
    lines += markdown_lines(
        report.rows, n_runs=report.n_runs, dropped=report.dropped, group_by=report.group_by
    )
    path.write_text("\n".join(lines))


CSV_STATS = [
    "verdict",
    "n",
    "mean",
    "median",
    "sd",
    "ci_low",
    "ci_high",
    "delta",
    "delta_low",
    "delta_high",
    "p_beat",
    "p_beat_low",
    "p_beat_high",
    "p",
    "p_holm",
    "test",
    "normality_p",
    "tost_p",
    "tost_p_holm",
    "mde",
    "seeds_needed",
    "paired",
    "pairing",
    "p_first",
    "mean_rank",
    "top_group",
]


def stat_values(a: Analysis, index: int) -> dict[str, Any]:
    """Every statistic of one configuration, flat (for the CSV and the JSON)."""
    config = a.configs[index]
    raw = columns.row(a, index, config)
    out: dict[str, Any] = {k: raw.get(k, math.nan) for k in ("verdict", "n", "mean", "median")}
    out |= {"sd": raw["sd"], "ci_low": raw["ci"][0], "ci_high": raw["ci"][1]}
    comp = a.comparisons.get(config.label)
    if comp is not None:
        s, d = comp.stats, comp.decision
        out |= {k: getattr(s, k) for k in ("delta", "delta_low", "delta_high", "p_beat")}
        out |= {k: getattr(s, k) for k in ("p_beat_low", "p_beat_high", "p", "tost_p")}
        out |= {"test": s.test, "normality_p": s.normality_p}
        out |= {"p_holm": d.p_holm, "tost_p_holm": d.tost_holm, "mde": d.mde}
        out |= {"seeds_needed": d.seeds_needed, "paired": s.paired}
        out["pairing"] = comp.pairing.reason
    ranked = a.ranking
    if index < len(ranked.mean_ranks):
        out |= {"p_first": ranked.rank_first[index], "mean_rank": ranked.mean_ranks[index]}
    out["top_group"] = config.label in ranked.top_group
    return out


def write_csv(report: Report, path: Path) -> None:
    a = report.analysis
    by_label = {r.label: r for r in report.config_rows}
    param_keys = list(report.config_rows[0].params) if report.config_rows else []
    header = ["configuration", *CSV_STATS, *csv_header(report.config_rows, None)]

    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return "" if math.isnan(value) else repr(value)
        return str(value)

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, config in enumerate(a.configs):
            values = stat_values(a, i)
            line = [config.label, *(cell(values.get(k, math.nan)) for k in CSV_STATS)]
            writer.writerow(line + csv_cells(by_label[config.label], param_keys, None))


def write_json(report: Report, path: Path) -> None:
    a = report.analysis
    test = a.ranking.friedman
    labels = [c.label for c in a.configs[: len(a.ranking.mean_ranks)]]
    data = {
        "title": report.title,
        "metric": a.outcome.name,
        "metric_label": a.outcome.label,
        "higher_is_better": a.outcome.higher_is_better,
        "target": a.target,
        "baseline": a.baseline,
        "equivalence_margin": a.margin,
        "equivalence_note": a.margin_note,
        "alpha": ALPHA,
        "confidence": CONFIDENCE,
        "bootstrap_resamples": N_RESAMPLES,
        "seed": SEED,
        "plan_delta": a.plan_delta,
        "family_size": a.family_size,
        "notes": a.notes,
        "tests": a.tests,
        "configurations": [
            {
                "label": c.label,
                **stat_values(a, i),
                "values": c.values,
                "runs": {seed: r.run_id for seed, r in c.runs.items()},
            }
            for i, c in enumerate(a.configs)
        ],
        "friedman": None if test is None else vars(test),
        "ranked": labels,
        "blocks": a.ranking.blocks,
        "top_group": a.ranking.top_group,
        "posthoc_holm_p": a.ranking.posthoc,
        "p_row_beats_column": a.ranking.beats,
        "descriptive": [
            {"label": r.label, "n_runs": len(r.records), "numbers": r.numbers} for r in report.rows
        ],
        "figures": report.figures,
    }
    path.write_text(json.dumps(plain(data), indent=1, allow_nan=False))
