"""The findings tested: each claim's paired comparison (lrexp-compare's tests: the paired
t-test below 6 seeds, the exact signed-rank test from 6; Holm over the study's claims; TOST for
equivalence within ``--margin``), the table ``findings.md``, ``findings.json`` and the forest
plot ``findings.png`` in ``--out``."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lrexp.compare.stats.pairwise import verdict
from lrexp.compare.stats.power import holm
from lrexp.findings.claims import (
    DERIVED_ARMS,
    ENVELOPE,
    LOSS,
    LR_RATIO_CLAIM,
    STEPS,
    Claim,
    lr_ratio_outcome,
)
from lrexp.findings.claims import outcome as claim_outcome
from lrexp.findings.results import Results, pair_by_seed


@dataclass
class Row:
    """One tested claim."""

    key: str
    text: str
    source: str
    arm: str
    base: str
    seeds: int
    arm_mean: float
    base_mean: float
    delta: float  #: arm - base, in nats (lower loss is better)
    low: float
    high: float
    test: str
    p: float
    p_holm: float = math.nan
    verdict: str = "inconclusive"
    outcome: str = "inconclusive"
    compute: str = ""


def arm_lr(arm: str, best: dict[str, float]) -> float:
    return best[DERIVED_ARMS.get(arm, arm)]


def compute_note(claim: Claim) -> str:
    """Optimizer steps per seed of each side; a fork's shared trunk is noted."""

    def steps(arm: str) -> str:
        own = STEPS[arm]
        return f"{own} + trunk" if arm.startswith("lm_cooldown") else str(own)

    return f"{steps(claim.arm)} vs {steps(claim.base)}"


def test_claim(
    claim: Claim, results: Results, best: dict[str, float], margin: float
) -> tuple[Row, float]:
    """The claim's row, and its TOST p (equivalence within ``margin``)."""
    arm = results.seeds_of(claim.arm, arm_lr(claim.arm, best), claim.metric)
    base = results.seeds_of(claim.base, arm_lr(claim.base, best), claim.base_metric)
    paired = pair_by_seed(arm, base, margin)
    stats = paired.stats
    return Row(
        claim.key,
        claim.text,
        claim.source,
        f"{claim.arm} ({claim.metric})",
        f"{claim.base} ({claim.base_metric})",
        paired.seeds,
        paired.arm_mean,
        paired.base_mean,
        stats.delta,
        stats.delta_low,
        stats.delta_high,
        stats.test,
        stats.p,
        compute=compute_note(claim),
    ), stats.tost_p


def report(
    results: Results, claims: Sequence[Claim], best: dict[str, float], args: argparse.Namespace
) -> list[str]:
    """Test every claim, write the table, JSON and figure; the console lines."""
    tested = [test_claim(c, results, best, args.margin) for c in claims]
    rows = [row for row, _ in tested]
    p_holm = holm([row.p for row in rows])
    tost_holm = holm([tost for _, tost in tested])
    for row, claim, p, tost in zip(rows, claims, p_holm, tost_holm, strict=True):
        row.p_holm = p
        row.verdict = verdict(row.delta, p, tost, higher_is_better=False)
        row.outcome = claim_outcome(claim.expect, row.verdict)
    lines = ["best LR of the grid (seed 0, lowest final val_full/loss):"]
    edges = (min(args.grid), max(args.grid))
    lines += [
        f"  {arm}: {lr:g}" + ("  (at the grid's edge: widen --grid)" if lr in edges else "")
        for arm, lr in best.items()
    ]
    ratio_line = ""
    if "lm_constant" in best and "lm_cosine" in best:
        ratio = best["lm_constant"] / best["lm_cosine"]
        key, text, source = LR_RATIO_CLAIM
        ratio_line = (
            f"| {key} | {text} ({source}) | best constant LR {best['lm_constant']:g} / best "
            f"cosine LR {best['lm_cosine']:g} = {ratio:g} (grid {', '.join(map(str, args.grid))}"
            f", seed 0) | | | | **{lr_ratio_outcome(ratio)}** |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "findings.md").write_text("\n".join(table(rows, ratio_line)) + "\n")
    payload = {"best_lr": best, "margin": args.margin, "rows": [asdict(r) for r in rows]}
    (args.out / "findings.json").write_text(json.dumps(payload, indent=2))
    forest(rows, args.out / "findings.png")
    if any(c.key.startswith("6") for c in claims):
        envelope(results, best, args.out / "findings_envelope.png")
    lines += table(rows, ratio_line)
    return lines


def table(rows: Sequence[Row], ratio_line: str) -> list[str]:
    """The manual's table: one row per claim."""
    out = [
        "| # | claim (source) | arm vs baseline | Δ nats (95 % CI) | test, Holm p | verdict, "
        "seeds | steps per seed | outcome |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.key} | {r.text} ({r.source}) | `{r.arm}` {r.arm_mean:.4f} vs `{r.base}` "
            f"{r.base_mean:.4f} | {r.delta:+.4f} ({r.low:+.4f}, {r.high:+.4f}) | {r.test}, "
            f"{r.p_holm:.3g} | {r.verdict}, {r.seeds} | {r.compute} | **{r.outcome}** |"
        )
    if ratio_line:
        out.append(ratio_line)
    return out


def forest(rows: Sequence[Row], path: object) -> None:
    """Δ and its 95 % CI per claim, coloured by outcome."""
    from lrexp.plots import new_figure, save

    fig = new_figure(7.5, 0.45 * len(rows) + 1.2)
    ax = fig.add_subplot()
    colours = {"reproduced": "tab:green", "not reproduced": "tab:red"}
    for index, r in enumerate(reversed(rows)):
        colour = colours.get(r.outcome, "tab:gray")
        ax.errorbar(
            r.delta, index, xerr=[[r.delta - r.low], [r.high - r.delta]], fmt="o", color=colour
        )
    ax.set_yticks(range(len(rows)), [f"{r.key}: {r.arm.split()[0]}" for r in reversed(rows)])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Δ final val_full/loss, arm − baseline (nats; < 0: the arm is better)")
    ax.set_title("lm_findings: green reproduced, red not, grey inconclusive", fontsize=10)
    save(fig, str(path))


def envelope(
    results: Results, best: dict[str, float], path: Path
) -> dict[str, list[tuple[float, float]]]:
    """Finding 6: the final loss (mean, 95 % t-interval over seeds) of the cooldown forks of one
    constant trunk and of separate cosine runs, at each run length, with the steps each costs;
    the plotted (mean, half-width) per side and length."""
    from scipy import stats

    from lrexp.plots import new_figure, save

    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    totals = sorted(ENVELOPE)
    plotted = {}
    for side, label, colour in ((0, "cooldown forks of one constant trunk", "tab:green"),
                                (1, "separate cosine runs", "tab:blue")):  # fmt: skip
        means, errors = [], []
        for total in totals:
            arm = ENVELOPE[total][side]
            values = np.array(list(results.seeds_of(arm, arm_lr(arm, best), LOSS).values()))
            means.append(values.mean() if len(values) else math.nan)
            half = stats.sem(values) * stats.t.ppf(0.975, len(values) - 1) if len(values) > 1 else 0
            errors.append(half)
        ax.errorbar(totals, means, yerr=errors, fmt="o-", color=colour, capsize=3, label=label)
        plotted[label] = list(zip(means, errors, strict=True))
    forks = max(totals) + sum(STEPS[ENVELOPE[t][0]] for t in totals)
    cosines = sum(totals)
    ax.set_xlabel("run length (optimizer steps)")
    ax.set_ylabel(f"final {LOSS} (mean, 95 % CI over seeds)")
    ax.set_title(
        f"finding 6: the envelope. Steps per seed: forks {forks:,} (trunk + cooldowns), "
        f"cosine runs {cosines:,}",
        fontsize=9,
    )
    ax.set_xticks(totals, [str(t) for t in totals])
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, path)
    return plotted
