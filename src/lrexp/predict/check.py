"""Leave one schedule out: fit a law on every other schedule of a sweep, predict the held-out
one, and measure the error where it matters (the final loss, the gap to a baseline, the order
that lrexp-compare's verdict gives), together with the trust checks.

Final loss of a schedule = the mean over its seeds of each run's last observed training loss;
its prediction = the mean over the same runs of the law at the same step. The predicted gap
to the baseline uses the same fit for both (the baseline is among the fitted schedules).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lrexp.predict.fit import Fit, fit_law, resample_seeds
from lrexp.predict.laws import Array, Curve, Law, predict_curve

#: a constant-LR run whose loss is not a power law in S₁ to within this R² (log-log) is flagged
POWER_LAW_R2 = 0.9


@dataclass
class HeldOut:
    """One held-out schedule: predicted against measured."""

    label: str
    predicted: float
    interval: tuple[float, float] | None
    measured: float
    seed_sd: float  #: sd over seeds of the measured final loss (nan with one seed)
    predicted_gap: float  #: held-out − baseline, predicted
    measured_gap: float
    verdict: str | None = None  #: lrexp-compare's verdict of the held-out vs the baseline
    agrees: bool | None = None  #: predicted order agrees with a better/worse verdict

    @property
    def abs_error(self) -> float:
        return self.predicted - self.measured

    @property
    def rel_error(self) -> float:
        return self.abs_error / self.measured


@dataclass
class CheckResult:
    law: str
    baseline: str
    held_out: list[HeldOut]
    fits: dict[str, Fit] = field(default_factory=dict)  #: held-out label -> fit without it
    warnings: list[str] = field(default_factory=list)  #: failed trust checks, one line each


def final_of(curve: Curve) -> float:
    return float(curve.loss[-1])


def predicted_final(law: Law, theta: Array, curves: Sequence[Curve]) -> float:
    return float(np.mean([predict_curve(law, theta, c.lrs, c.steps[-1:])[0] for c in curves]))


def by_label(curves: Sequence[Curve]) -> dict[str, list[Curve]]:
    out: dict[str, list[Curve]] = {}
    for c in curves:
        out.setdefault(c.label, []).append(c)
    return out


def leave_one_out(
    law: Law,
    curves: Sequence[Curve],
    baseline: str,
    resamples: int = 0,
    rng: np.random.Generator | None = None,
) -> CheckResult:
    """Hold out each schedule but the baseline in turn; fit the law on the others."""
    groups = by_label(curves)
    if baseline not in groups:
        raise ValueError(f"baseline {baseline!r} is not among the schedules {sorted(groups)}")
    if len(groups) < 3:
        raise ValueError("leave-one-out needs at least 3 schedules (2 to fit, 1 to hold out)")
    rng = rng if rng is not None else np.random.default_rng(0)
    result = CheckResult(law.name, baseline, [])
    base_measured = float(np.mean([final_of(c) for c in groups[baseline]]))
    for label, held in groups.items():
        if label == baseline:
            continue
        train = [c for c in curves if c.label != label]
        fit = fit_law(law, train)
        if resamples:
            resample_seeds(law, train, fit, resamples, rng)
        result.fits[label] = fit
        predicted = predicted_final(law, fit.theta, held)
        interval = None
        if fit.resamples:
            finals = [predicted_final(law, np.array(row), held) for row in fit.resamples]
            interval = (float(np.percentile(finals, 2.5)), float(np.percentile(finals, 97.5)))
        measured = [final_of(c) for c in held]
        result.held_out.append(
            HeldOut(
                label=label,
                predicted=predicted,
                interval=interval,
                measured=float(np.mean(measured)),
                seed_sd=float(np.std(measured, ddof=1)) if len(measured) > 1 else math.nan,
                predicted_gap=predicted - predicted_final(law, fit.theta, groups[baseline]),
                measured_gap=float(np.mean(measured)) - base_measured,
            )
        )
    noise = [h for h in result.held_out if math.isfinite(h.seed_sd)]
    if noise:
        rms = float(np.sqrt(np.mean([h.abs_error**2 for h in noise])))
        sd = float(np.sqrt(np.mean([h.seed_sd**2 for h in noise])))
        if rms > sd:
            result.warnings.append(
                f"held-out residuals (rms {rms:.4g}) are larger than the seed-to-seed noise "
                f"of the final loss (sd {sd:.4g}): the law misses more than the seeds vary"
            )
    return result


def attach_verdicts(result: CheckResult, verdicts: Mapping[str, str]) -> None:
    """Set each held-out schedule's lrexp-compare verdict (lower loss is better) and whether
    the predicted gap has the verdict's sign, where the verdict is better or worse."""
    for h in result.held_out:
        h.verdict = verdicts.get(h.label)
        if h.verdict in ("better", "worse"):
            h.agrees = (h.predicted_gap < 0) == (h.verdict == "better")


# --------------------------------------------------------------------------- trust checks


def trust_warnings(
    curves: Sequence[Curve],
    val_loss: Mapping[str, Sequence[tuple[int, float]]],
    loss: str = "training loss",
) -> list[str]:
    """The trust checks that fail, one line each: a fitted loss (``loss`` names it) that does
    not decrease; validation loss rising while training loss falls (overfitting: outside the
    laws' regime); a constant-LR run that is not close to a power law in S₁."""
    lines = []
    for c in curves:
        name = f"{c.label} (seed {c.seed})" if c.seed is not None else c.label
        half = max(1, len(c.loss) // 4)
        first, last = float(np.mean(c.loss[:half])), float(np.mean(c.loss[-half:]))
        if not last < first:
            lines.append(f"{name}: the {loss} does not decrease ({first:.4g} -> {last:.4g})")
        points = list(val_loss.get(c.run_id or "", []))
        if len(points) >= 3 and last < first:
            values = [v for _, v in points]
            best = int(np.argmin(values))
            if values[-1] > values[best] * 1.02 and best < len(values) - 1:
                lines.append(
                    f"{name}: validation loss rises from {values[best]:.4g} (step "
                    f"{points[best][0]}) to {values[-1]:.4g} while the training loss falls: "
                    "overfitting, outside the laws' regime"
                )
        r2 = constant_power_r2(c)
        if r2 is not None and r2 < POWER_LAW_R2:
            lines.append(
                f"{name}: a constant-LR run that is not close to a power law in S1 "
                f"(log-log R² {r2:.3f} < {POWER_LAW_R2})"
            )
    return lines


def constant_power_r2(curve: Curve) -> float | None:
    """For a run whose LR is constant after its peak: R² of the best fit of
    log(L − L₀) against log(S₁) over a grid of L₀ below the lowest loss; None otherwise."""
    lrs = curve.lrs
    peak = int(np.argmax(lrs))
    if peak >= len(lrs) - 1 or not np.allclose(lrs[peak:], lrs[peak], rtol=1e-9):
        return None
    keep = curve.steps > peak
    if keep.sum() < 4:
        return None
    s1 = np.log(np.cumsum(lrs)[curve.steps[keep] - 1])
    loss = curve.loss[keep]
    best = -math.inf
    for share in np.linspace(0.0, 0.99, 34):
        y = np.log(loss - share * loss.min())
        residual = y - np.polyval(np.polyfit(s1, y, 1), s1)
        total = float(np.sum((y - y.mean()) ** 2))
        if total > 0:
            best = max(best, 1 - float(np.sum(residual**2)) / total)
    return best
