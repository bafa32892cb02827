"""The verdict table: its columns (with the one-line legend of each) and its rows, shared by
``summary.md``, ``summary.csv``, ``summary.json`` and ``report.html``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrexp.compare.analysis import Analysis, Config
from lrexp.compare.stats import ALPHA


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    legend: str
    kind: str  # value | p | share | count | text


COLUMNS = (
    Column("configuration", "configuration", "the runs that differ only in seed", "text"),
    Column(
        "verdict",
        "verdict",
        "better/worse: Holm p < α and Δ's sign; equivalent: Holm TOST p < α within the "
        "margin; else inconclusive",
        "text",
    ),
    Column("n", "n", "seeds with a value", "count"),
    Column("mean", "mean", "mean over seeds", "value"),
    Column("median", "median", "median over seeds", "value"),
    Column("sd", "sd", "sample standard deviation over seeds", "value"),
    Column("ci", "95% CI", "BCa bootstrap CI of the mean", "value"),
    Column("delta", "Δ", "mean difference to the baseline (paired: over shared seeds)", "value"),
    Column("delta_ci", "95% CI of Δ", "BCa bootstrap CI of Δ", "value"),
    Column(
        "p_beat",
        "P(beat)",
        "share of seeds where it beats the baseline (unpaired: of all pairs of runs; ties half)",
        "share",
    ),
    Column("p_beat_ci", "95% CI of P(beat)", "percentile bootstrap CI of P(beat)", "share"),
    Column(
        "p",
        "p",
        "two-sided p of Δ = 0: paired t or exact signed-rank (the notes say which), rank-sum "
        "unpaired",
        "p",
    ),
    Column("p_holm", "Holm p", "p adjusted (Holm) over every comparison in this table", "p"),
    Column(
        "mde",
        "MDE",
        "smallest |Δ| these seeds detect with 80% power after Holm (inf: they cannot)",
        "value",
    ),
    Column("paired", "paired", "yes when init_digest and order_digest match on every seed", "text"),
    Column("p_first", "P(first)", "probability of the best mean, bootstrap over seeds", "share"),
    Column(
        "seeds_needed",
        "seeds needed",
        "seeds that detect Δ (or --plan-seeds) with 80% power after Holm",
        "count",
    ),
)


def fmt(value: Any, kind: str, spec: str) -> str:
    """One cell: numbers by kind, pairs as ``[low, high]``, missing as ``–``."""
    if isinstance(value, tuple):
        if not all(isinstance(v, float) and math.isfinite(v) for v in value):
            return "–"
        return "[" + ", ".join(fmt(v, kind, spec) for v in value) + "]"
    if value is None or isinstance(value, str):
        return value or "–"
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf"
    formats: dict[str, Callable[[float], str]] = {
        "value": lambda v: format(v, spec),
        "p": lambda v: f"{v:.3g}",
        "share": lambda v: f"{v:.2f}",
        "count": lambda v: f"{v:.0f}",
    }
    return formats[kind](float(value))


def number_format(analysis: Analysis) -> str:
    return ".0f" if analysis.outcome.name == "steps_to_target" else ".4f"


def row(analysis: Analysis, index: int, config: Config) -> dict[str, Any]:
    """The raw numbers of one configuration's row (tuples for CIs, NaN for none)."""
    d = config.description
    nan = math.nan
    out: dict[str, Any] = {
        "configuration": config.label,
        "n": d.n,
        "mean": d.mean,
        "median": d.median,
        "sd": d.sd,
        "ci": (d.ci_low, d.ci_high),
        "p_first": nan,
    }
    ranked = analysis.ranking
    if index < len(ranked.rank_first):
        out["p_first"] = ranked.rank_first[index]
    comp = analysis.comparisons.get(config.label)
    if config.label == analysis.baseline:
        out.update(verdict="baseline", delta=0.0, paired="–")
    elif comp is None:
        out.update(verdict="no value")
    else:
        s, dec = comp.stats, comp.decision
        out.update(
            verdict=dec.verdict,
            delta=s.delta,
            delta_ci=(s.delta_low, s.delta_high),
            p_beat=s.p_beat,
            p_beat_ci=(s.p_beat_low, s.p_beat_high),
            p=s.p,
            p_holm=dec.p_holm,
            mde=dec.mde,
            paired="yes" if s.paired else "no",
            seeds_needed=dec.seeds_needed
            if dec.verdict == "inconclusive" or analysis.plan_delta is not None
            else nan,
        )
    return out


def rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Every configuration's row, best mean first."""
    return [row(analysis, i, c) for i, c in enumerate(analysis.configs)]


def cells(analysis: Analysis, raw: dict[str, Any]) -> list[str]:
    spec = number_format(analysis)
    return [fmt(raw.get(c.key), c.kind, spec) for c in COLUMNS]


def legend() -> list[str]:
    return [f"`{c.header}`: {c.legend}" for c in COLUMNS] + [f"α = {ALPHA}"]
