"""The loss-curve laws against published reference numbers, a brute-force evaluation of the
formulas, finite differences, and recovery of known parameters from noisy simulated curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import huber

from lrexp.predict.fit import fit_law, resample_seeds
from lrexp.predict.laws import Curve, MultiPowerLaw, TissueLaw, predict_curve

REFERENCE = Path(__file__).parent / "data" / "multipowerlaw_25M.json"


def repo_schedules() -> dict[str, np.ndarray]:
    """The LR arrays the MultiPowerLaw repository builds for its cosine and WSD runs (see the
    fixture's ``source.schedules``), written here from their definitions."""
    warmup, total, peak, end = 2160, 24000, 3e-4, 3e-5
    ramp = np.linspace(0, peak, warmup)
    t = np.arange(warmup, total)
    cosine = end + 0.5 * (peak - end) * (1 + np.cos(np.pi * (t - warmup) / (total - warmup)))
    decay = 20000
    d = np.arange(decay, total)
    geometric = peak ** ((total - d) / (total - decay)) * end ** ((d - decay) / (total - decay))
    wsd = np.concatenate((ramp, np.full(decay - warmup, peak), geometric))
    return {"cosine_24000": np.concatenate((ramp, cosine)), "wsd_20000_24000": wsd}


@pytest.mark.parametrize("name", ["cosine_24000", "wsd_20000_24000"])
def test_mpl_reproduces_the_repositorys_published_fit_metrics(name: str) -> None:
    """With the 25M model's published parameters, lrexp's predictions give the repository's
    own logged metrics (mean absolute error, MSE, worst relative error, R², Huber) to 1e-6."""
    reference = json.loads(REFERENCE.read_text())
    theta = np.array(list(reference["parameters"].values()))
    curve = reference["curves"][name]
    steps = np.array(curve["step"])
    loss = np.array(curve["loss"])
    # the repository's loss at array index s follows updates 0..s: N = s + 1 updates done
    pred = predict_curve(MultiPowerLaw(), theta, repo_schedules()[name], steps + 1)
    want = curve["metrics"]
    got = {
        "mae_loss": np.mean(np.abs(loss - pred)),
        "mse_loss": np.mean((loss - pred) ** 2),
        "prede": np.mean(np.abs(loss - pred) / loss),
        "worste": np.max(np.abs(loss - pred) / loss),
        "r2_score": 1 - np.sum((loss - pred) ** 2) / np.sum((loss - loss.mean()) ** 2),
        "huber_loss": huber(1e-3, np.log(loss) - np.log(pred)).sum(),
    }
    for key, value in got.items():
        assert value == pytest.approx(want[key], rel=1e-6), key


def brute_mpl(theta: np.ndarray, lrs: np.ndarray, n: int) -> float:
    """The Multi-Power Law after n updates, term by term from the paper's formula."""
    L0, A, alpha, B, C, beta, gamma = theta
    s1 = sum(lrs[:n])
    drop = 0.0
    for k in range(1, n):
        sk = sum(lrs[k:n])
        drop += (lrs[k - 1] - lrs[k]) * (1 - (C * lrs[k] ** (-gamma) * sk + 1) ** (-beta))
    return L0 + A * s1 ** (-alpha) - B * drop


def brute_tissue(theta: np.ndarray, lrs: np.ndarray, n: int, lam: float) -> float:
    L0, A, alpha, C = theta
    peak = int(np.argmax(lrs))
    m, s2 = 0.0, 0.0
    for i in range(n):
        m = lam * m + (lrs[i - 1] - lrs[i] if i > peak else 0.0)
        s2 += m
    return L0 + A * sum(lrs[:n]) ** (-alpha) - C * s2


def schedule(kind: str, total: int = 120, peak: float = 0.1) -> np.ndarray:
    t = np.arange(total)
    warm = np.minimum(1.0, (t + 1) / 10)
    if kind == "cosine":
        return peak * warm * 0.5 * (1 + np.cos(np.pi * t / total))
    if kind == "wsd":
        return peak * warm * np.clip((total - t) / (0.2 * total), 0, 1)
    if kind == "two_stage":
        return peak * warm * np.where(t < total // 2, 1.0, 0.3)
    return peak * warm


MPL_TRUE = np.array([0.3, 0.9, 0.55, 6.0, 4.0, 0.6, 0.5])
TISSUE_TRUE = np.array([0.3, 0.9, 0.55, 0.04])


@pytest.mark.parametrize("kind", ["cosine", "wsd", "two_stage", "constant"])
def test_laws_equal_a_brute_force_evaluation(kind: str) -> None:
    lrs = schedule(kind)
    steps = np.array([1, 2, 7, 40, 90, 119, 120])
    mpl = predict_curve(MultiPowerLaw(), MPL_TRUE, lrs, steps)
    assert mpl == pytest.approx([brute_mpl(MPL_TRUE, lrs, n) for n in steps], rel=1e-12)
    tissue = predict_curve(TissueLaw(0.9), TISSUE_TRUE, lrs, steps)
    assert tissue == pytest.approx(
        [brute_tissue(TISSUE_TRUE, lrs, n, 0.9) for n in steps], rel=1e-12
    )


@pytest.mark.parametrize("law", [MultiPowerLaw(), TissueLaw()], ids=["mpl", "tissue"])
def test_gradients_match_finite_differences(law: MultiPowerLaw | TissueLaw) -> None:
    lrs = schedule("wsd")
    prepared = law.prepare(lrs, np.arange(5, 121, 5))
    theta0 = MPL_TRUE if isinstance(law, MultiPowerLaw) else TISSUE_TRUE
    for row in range(0, 24, 7):
        error = check_grad(
            lambda th, r=row: law.predict(th, prepared)[0][r],
            lambda th, r=row: law.predict(th, prepared)[1][r],
            theta0,
        )
        assert error < 1e-5 * max(1.0, float(np.abs(law.predict(theta0, prepared)[1][row]).max()))


def simulated(law: MultiPowerLaw | TissueLaw, theta: np.ndarray, seeds: int) -> list[Curve]:
    """Curves of three schedules x ``seeds`` seeds, with 0.2 % multiplicative noise."""
    rng = np.random.default_rng(0)
    curves = []
    steps = np.arange(4, 121, 4)
    for seed in range(seeds):
        for kind in ("cosine", "constant", "two_stage"):
            lrs = schedule(kind)
            clean = predict_curve(law, theta, lrs, steps)
            noisy = clean * np.exp(rng.normal(0, 0.002, len(clean)))
            curves.append(Curve(lrs, steps, noisy, kind, str(seed)))
    return curves


@pytest.mark.parametrize(
    ("law", "theta"),
    [(MultiPowerLaw(), MPL_TRUE), (TissueLaw(), TISSUE_TRUE)],
    ids=["mpl", "tissue"],
)
def test_fitting_recovers_known_parameters(
    law: MultiPowerLaw | TissueLaw, theta: np.ndarray
) -> None:
    curves = simulated(law, theta, seeds=3)
    fit = fit_law(law, curves)
    # what matters: the held-out schedule's curve, predicted from the fitted parameters
    wsd = schedule("wsd")
    true_curve = predict_curve(law, theta, wsd)
    fitted_curve = predict_curve(law, fit.theta, wsd)
    assert np.max(np.abs(fitted_curve / true_curve - 1)) < 0.01
    # the well-determined parameters themselves
    assert fit.params["L0"] == pytest.approx(theta[0], rel=0.15)
    assert fit.params["alpha"] == pytest.approx(theta[2], rel=0.15)
    # seed resamples give intervals that contain the truth of the well-determined ones
    resample_seeds(law, curves, fit, resamples=20, rng=np.random.default_rng(1))
    assert len(fit.resamples) == 20
    low, high = fit.interval()["L0"]
    assert low <= high and math.isfinite(low)
