"""The loss-curve laws where they were made: fit the Multi-Power Law and Tissue et al.'s law on
the study's cosine, constant and WSD runs at one peak LR (as the Multi-Power Law's authors fit
theirs), predict every other schedule the study ran at that LR, and measure the error where it
matters: the final ``val/loss`` and the gap to cosine of the same length, against the paired
verdict of that gap. Also the verification of ``lrexp-predict optimize``'s schedule.

The fitted loss is ``val/loss`` (the fixed validation windows every 100 steps: one pass over
the corpus, so it estimates the population loss with far less noise than training windows),
from step :data:`FIT_FROM` on: the first steps' fall from the uniform byte distribution is
outside the laws' regime. A cooldown fork's LRs before its fork step are its trunk's
(:func:`lrexp.predict.runs.read_runs` joins them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrexp.compare.stats.pairwise import verdict
from lrexp.compare.stats.power import holm
from lrexp.findings.results import pair_by_seed
from lrexp.predict.fit import Fit, fit_law
from lrexp.predict.laws import LAWS, Curve, make_law, predict_curve
from lrexp.predict.runs import RunCurves, from_step, read_runs

LAW_LOSS = "val/loss"
FIT_FROM = 200  #: the first step whose validation the laws fit
#: the runs the laws are fitted on (Luo et al. fit theirs on cosine, constant and WSD)
FIT_ARMS = ("lm_cosine", "lm_constant", "lm_wsd_linear")
#: every other LR schedule of the study (schedule-free AdamW is another optimizer)
HELD_OUT_ARMS = (
    "lm_wsd_sqrt",
    "lm_linear_d2z",
    "lm_cooldown_50",
    "lm_cooldown_100",
    "lm_cooldown_200",
    "lm_cooldown_400",
    "lm_cosine_250",
    "lm_cosine_500",
    "lm_cooldown_at200",
    "lm_cooldown_at400",
)
#: the cosine run of each length, which gaps are measured to
COSINE_OF_LENGTH = {1000: "lm_cosine", 250: "lm_cosine_250", 500: "lm_cosine_500"}
OPTIMIZED_ARM = "lm_optimized"


@dataclass
class LawRow:
    """One schedule under one law: its predicted and measured final loss (means over seeds),
    and its gap to the cosine of the same length, predicted and measured (paired by seed)."""

    law: str
    arm: str
    fitted: bool
    steps: int
    seeds: int
    predicted: float
    measured: float
    reference: str = ""
    predicted_gap: float = math.nan
    measured_gap: float = math.nan
    gap_low: float = math.nan
    gap_high: float = math.nan
    gap_p: float = math.nan
    gap_p_holm: float = math.nan
    gap_verdict: str = ""

    @property
    def rel_error(self) -> float:
        return (self.predicted - self.measured) / self.measured

    @property
    def sign_agrees(self) -> bool | None:
        """Whether the predicted gap has the sign of a better/worse verdict (None otherwise)."""
        if self.gap_verdict not in ("better", "worse"):
            return None
        return (self.predicted_gap < 0) == (self.gap_verdict == "better")


def study_curves(tracking_uri: str, experiment: str) -> RunCurves:
    """Every FINISHED run of the study as a curve of :data:`LAW_LOSS` labelled by its arm."""
    return read_runs(
        tracking_uri, experiment=experiment, group_by="study_arm", loss=LAW_LOSS, min_points=1
    )


def law_curves(
    runs: RunCurves, lr: float, arms: Sequence[str], seeds: int | None = None
) -> list[Curve]:
    """The curves of ``arms`` at peak LR ``lr`` (seeds below ``seeds`` when given), the latest
    run of each (arm, seed)."""
    lr_of = {r.run_id: float(r.params.get("optimizer.lr", "nan")) for r in runs.records}
    latest: dict[tuple[str, str | None], Curve] = {}
    for c in runs.curves:  # in start order: a later duplicate replaces an earlier one
        wanted = c.label in arms and math.isclose(lr_of[str(c.run_id)], lr, rel_tol=1e-9)
        if wanted and (seeds is None or (c.seed is not None and int(c.seed) < seeds)):
            latest[(c.label, c.seed)] = c
    return list(latest.values())


def by_arm(curves: Sequence[Curve]) -> dict[str, dict[str, Curve]]:
    out: dict[str, dict[str, Curve]] = {}
    for c in curves:
        out.setdefault(c.label, {})[str(c.seed)] = c
    return out


def fit_laws(curves: Sequence[Curve], fit_from: int = FIT_FROM) -> dict[str, Fit]:
    """Each law fitted on the :data:`FIT_ARMS` curves' points from step ``fit_from`` on."""
    train = from_step([c for c in curves if c.label in FIT_ARMS], fit_from)
    missing = sorted(set(FIT_ARMS) - {c.label for c in train})
    if missing:
        raise ValueError(f"the laws need runs of {', '.join(missing)} at the laws' LR")
    return {name: fit_law(make_law(name), train) for name in LAWS}


def final_prediction(law: str, fit: Fit, curve: Curve) -> float:
    return float(predict_curve(make_law(law), fit.theta, curve.lrs, curve.steps[-1:])[0])


def law_rows(fits: Mapping[str, Fit], curves: Sequence[Curve], margin: float) -> list[LawRow]:
    """A row per law and arm (fitted arms first); each gap tested paired by seed, Holm over the
    gaps of one law."""
    arms = by_arm(curves)
    rows = []
    for law, fit in fits.items():
        mine: list[LawRow] = []
        tosts = []
        for arm in [*FIT_ARMS, *HELD_OUT_ARMS]:
            runs = arms.get(arm)
            if not runs:
                continue
            steps = len(next(iter(runs.values())).lrs)
            predicted = {s: final_prediction(law, fit, c) for s, c in runs.items()}
            measured = {s: float(c.loss[-1]) for s, c in runs.items()}
            row = LawRow(
                law,
                arm,
                arm in FIT_ARMS,
                steps,
                len(runs),
                float(np.mean(list(predicted.values()))),
                float(np.mean(list(measured.values()))),
            )
            reference = COSINE_OF_LENGTH.get(steps)
            base = arms.get(reference or "", {})
            common = sorted(set(runs) & set(base))
            if reference and reference != arm and len(common) >= 2:
                base_final = {s: float(c.loss[-1]) for s, c in base.items()}
                stats = pair_by_seed(measured, base_final, margin).stats
                base_predicted = [final_prediction(law, fit, base[s]) for s in common]
                row.reference = reference
                row.predicted_gap = float(np.mean([predicted[s] for s in common])) - float(
                    np.mean(base_predicted)
                )
                row.measured_gap = stats.delta
                row.gap_low, row.gap_high, row.gap_p = stats.delta_low, stats.delta_high, stats.p
                tosts.append(stats.tost_p)
            mine.append(row)
        tested = [r for r in mine if r.reference]
        for row, p, tost in zip(tested, holm([r.gap_p for r in tested]), holm(tosts), strict=True):
            row.gap_p_holm = p
            row.gap_verdict = verdict(row.measured_gap, p, tost, higher_is_better=False)
        rows += mine
    return rows


def summary(rows: Sequence[LawRow]) -> dict[str, dict[str, float]]:
    """Per law: the mean |relative error| of the held-out final losses, the worst, and the
    gaps whose verdict is better/worse with the predicted sign right, of how many."""
    out = {}
    for law in dict.fromkeys(r.law for r in rows):
        held = [r for r in rows if r.law == law and not r.fitted]
        called = [r for r in held if r.sign_agrees is not None]
        errors = [abs(r.rel_error) for r in held]
        out[law] = {
            "held_out": len(held),
            "mean_abs_rel_error": float(np.mean(errors)) if errors else math.nan,
            "max_abs_rel_error": float(np.max(errors)) if errors else math.nan,
            "signs_right": sum(bool(r.sign_agrees) for r in called),
            "signs_called": len(called),
        }
    return out


def table(rows: Sequence[LawRow]) -> list[str]:
    """The manual's held-out table (Markdown)."""
    lines = [
        "| law | schedule | steps | seeds | predicted final val/loss | measured | rel. error "
        "| gap to cosine: predicted | measured [95 % CI] | Holm p | verdict | sign |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        name = r.arm + (" (fitted)" if r.fitted else "")
        gap = pred_gap = p = sign = ""
        if r.reference:
            pred_gap = f"{r.predicted_gap:+.4f}"
            gap = f"{r.measured_gap:+.4f} [{r.gap_low:+.4f}, {r.gap_high:+.4f}]"
            p = f"{r.gap_p_holm:.2g}"
            sign = {True: "right", False: "**wrong**", None: ""}[r.sign_agrees]
        lines.append(
            f"| {r.law} | {name} | {r.steps} | {r.seeds} | {r.predicted:.4f} | {r.measured:.4f} "
            f"| {100 * r.rel_error:+.2f} % | {pred_gap} | {gap} | {p} | {r.gap_verdict} | "
            f"{sign} |"
        )
    lines.append("")
    for law, s in summary(rows).items():
        lines.append(
            f"- {law}: mean |relative error| held out {100 * s['mean_abs_rel_error']:.2f} % "
            f"(worst {100 * s['max_abs_rel_error']:.2f} %, {s['held_out']} schedules); the sign "
            f"right on {s['signs_right']} of the {s['signs_called']} gaps the paired runs call "
            "better or worse"
        )
    return lines


def figure(fits: Mapping[str, Fit], curves: Sequence[Curve], path: Path) -> None:
    """Per law, each schedule's mean measured ``val/loss`` (points) and the law's prediction
    (lines, dashed where held out)."""
    from lrexp.plots import log_scale, new_figure

    arms = by_arm(curves)
    fig = new_figure(6.0 * len(fits), 5.0)
    for i, (law, fit) in enumerate(fits.items()):
        ax = fig.add_subplot(1, len(fits), i + 1)
        for arm in [a for a in (*FIT_ARMS, *HELD_OUT_ARMS) if a in arms]:
            runs = list(arms[arm].values())
            steps = np.arange(FIT_FROM, len(runs[0].lrs) + 1)
            mean = np.mean([predict_curve(make_law(law), fit.theta, c.lrs, steps) for c in runs], 0)
            (line,) = ax.plot(steps, mean, ls="-" if arm in FIT_ARMS else "--", lw=1, label=arm)
            common = sorted(set.intersection(*(set(c.steps.tolist()) for c in runs)))
            at = [s for s in common if s >= FIT_FROM]
            observed = [np.mean([c.loss[c.steps.tolist().index(s)] for c in runs]) for s in at]
            ax.plot(at, observed, "o", ms=3, color=line.get_color())
        ax.set_title(f"{law}: fitted (solid) and held out (dashed)")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"{LAW_LOSS} (mean over seeds)")
        log_scale(ax, "y")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
