"""The laws stage of the findings study: a fork's LRs joined to its trunk's in a real MLflow
store, the held-out table on curves that follow the Multi-Power Law with paired seed noise, and
the synthesized schedule's table as training plans it and as its runs are recognized."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from scipy import stats

from lrexp.findings.laws import (
    FIT_ARMS,
    figure,
    fit_laws,
    law_rows,
    summary,
    table,
)
from lrexp.findings.results import Results
from lrexp.findings.verify import Table, rival, verify_rows
from lrexp.predict.cli import main as predict_main
from lrexp.predict.laws import Curve, MultiPowerLaw, predict_curve
from lrexp.predict.runs import from_step, read_runs
from lrexp.predict.synthesis import table_lrs

TRUE = np.array([1.2, 1.1, 0.3, 40.0, 2.0, 0.6, 0.5])  # L0, A, alpha, B, C, beta, gamma
PEAK, WARMUP = 0.002, 50


def warmup_then(after: np.ndarray) -> np.ndarray:
    return np.concatenate((PEAK * np.linspace(0.1, 1.0, WARMUP, endpoint=False), after))


def decay(total: int, cooldown: int, shape: str) -> np.ndarray:
    """Constant after the warmup, then a linear or 1-sqrt cooldown to zero."""
    t = np.arange(total - WARMUP)
    start = total - WARMUP - cooldown
    progress = np.clip((t - start) / cooldown, 0, 1)
    return PEAK * (1 - (np.sqrt(progress) if shape == "sqrt" else progress))


def cosine(total: int) -> np.ndarray:
    t = np.arange(total - WARMUP) / (total - WARMUP)
    return PEAK * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t)))


ARMS = {
    "lm_cosine": warmup_then(cosine(1000)),
    "lm_constant": warmup_then(np.full(950, PEAK)),
    "lm_wsd_linear": warmup_then(decay(1000, 200, "linear")),
    "lm_wsd_sqrt": warmup_then(decay(1000, 200, "sqrt")),
    "lm_cooldown_50": warmup_then(decay(1000, 50, "sqrt")),
    "lm_cosine_250": warmup_then(cosine(250)),
    "lm_cooldown_at200": warmup_then(decay(250, 50, "sqrt")),
}


def synthetic_curves(seeds: int = 4, noise: float = 5e-4) -> list[Curve]:
    """Each arm's val/loss every 100 steps (and at its end) from the true law, times a
    per-seed factor shared by the arms of the seed and a small per-point factor."""
    curves = []
    for seed in range(seeds):
        shared = np.random.default_rng(seed).normal(0, 3 * noise)
        for index, (arm, lrs) in enumerate(ARMS.items()):
            steps = np.unique(np.r_[np.arange(100, len(lrs) + 1, 100), len(lrs)])
            own = np.random.default_rng(1000 * seed + index).normal(0, noise, len(steps))
            loss = predict_curve(MultiPowerLaw(), TRUE, lrs, steps) * np.exp(shared + own)
            curves.append(Curve(lrs, steps, loss, arm, str(seed), f"{arm}-{seed}"))
    return curves


def test_held_out_schedules_predicted_with_their_gaps_to_cosine(tmp_path: Path) -> None:
    curves = synthetic_curves()
    fits = fit_laws(curves)
    rows = law_rows(fits, curves, margin=0.001)
    mpl = [r for r in rows if r.law == "mpl"]
    assert [r.arm for r in mpl] == [*FIT_ARMS, "lm_wsd_sqrt", "lm_cooldown_50", "lm_cosine_250",
                                    "lm_cooldown_at200"]  # fmt: skip
    for r in mpl:
        assert abs(r.rel_error) < 0.003, r  # the law that made the data predicts it
        assert r.seeds == 4 and r.fitted == (r.arm in FIT_ARMS)
    by_arm = {r.arm: r for r in mpl}
    # gaps are to the cosine of the same length; the short cosine has none to itself
    assert by_arm["lm_cooldown_at200"].reference == "lm_cosine_250"
    assert by_arm["lm_wsd_sqrt"].reference == "lm_cosine" and not by_arm["lm_cosine_250"].reference
    wsd = by_arm["lm_wsd_sqrt"]
    measured = [
        float(c.loss[-1]) - float(b.loss[-1])
        for c in curves
        if c.label == "lm_wsd_sqrt"
        for b in curves
        if b.label == "lm_cosine" and b.seed == c.seed
    ]
    assert wsd.measured_gap == pytest.approx(np.mean(measured), abs=1e-12)
    assert wsd.gap_p == pytest.approx(stats.ttest_rel(measured, np.zeros(4)).pvalue, rel=1e-9)
    assert wsd.predicted_gap == pytest.approx(np.mean(measured), abs=0.004)
    called = [r for r in mpl if r.gap_verdict in ("better", "worse")]
    assert called and all(r.sign_agrees for r in called)
    numbers = summary(rows)["mpl"]
    assert numbers["held_out"] == 4 and numbers["signs_right"] == numbers["signs_called"]
    assert numbers["mean_abs_rel_error"] < 0.003
    lines = table(rows)
    assert any(line.startswith("| mpl | lm_wsd_sqrt | 1000 | 4 |") for line in lines)
    assert any(line.startswith("- tissue: mean |relative error| held out") for line in lines)
    figure(fits, curves, tmp_path / "laws.png")
    assert (tmp_path / "laws.png").stat().st_size > 10_000


def test_the_laws_refuse_to_fit_without_their_three_schedules() -> None:
    curves = [c for c in synthetic_curves(2) if c.label != "lm_wsd_linear"]
    with pytest.raises(ValueError, match="need runs of lm_wsd_linear at the laws' LR"):
        fit_laws(curves)


def test_a_forks_lrs_are_its_trunks_before_the_fork(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("forks")
    trunk_lrs = [0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    fork_lrs = {6: 0.08, 7: 0.06, 8: 0.04, 9: 0.02}

    def logged(
        name: str, lrs: dict[int, float], losses: dict[int, float], tags: dict[str, str]
    ) -> str:
        run = client.create_run(experiment, run_name=name).info.run_id
        metrics = [Metric("lr", v, 0, s) for s, v in lrs.items()]
        metrics += [Metric("val/loss", v, 0, s) for s, v in losses.items()]
        client.log_batch(
            run,
            metrics=metrics,
            params=[Param("seed", "0"), Param("schedule.name", name)],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.set_terminated(run)
        return run

    trunk = logged("trunk", dict(enumerate(trunk_lrs)), {2: 2.0, 4: 1.8, 6: 1.7, 8: 1.65}, {})
    fork = logged("fork", fork_lrs, {10: 1.5}, {"fork_of": trunk, "fork_at": "6"})
    one = read_runs(uri, experiment="forks", loss="val/loss", min_points=1)
    curves = {c.label: c for c in one.curves}
    assert curves["fork"].lrs.tolist() == trunk_lrs[:6] + list(fork_lrs.values())
    assert curves["fork"].steps.tolist() == [10] and curves["trunk"].lrs.tolist() == trunk_lrs
    # a fit needs two points: the fork is left out, with why
    two = read_runs(uri, experiment="forks", loss="val/loss")
    assert [c.label for c in two.curves] == ["trunk"]
    assert two.skipped == ["fork: fewer than 2 points of val/loss"]
    late = from_step(one.curves, 5)
    assert [(c.label, c.steps.tolist()) for c in late] == [("trunk", [6, 8])]
    assert fork and "fork" not in {c.label for c in late}  # one point left: dropped


def test_from_step_past_every_point_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_predict_cli import write_sweep

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    parent = write_sweep(uri, seeds=2)
    status = predict_main(
        ["fit", "--tracking-uri", uri, "--parent", parent, "--from-step", "500",
         "--resamples", "0", "--out", str(tmp_path / "fit")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().splitlines()[-1] == (
        "lrexp-predict: error: no selected run has 2 points of the training loss at step 500 "
        "or later (--from-step)"
    )
    status = predict_main(
        ["fit", "--tracking-uri", uri, "--parent", parent, "--from-step", "100", "--laws", "mpl",
         "--resamples", "0", "--out", str(tmp_path / "fit")]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert "(48 points, 8 runs)" in capsys.readouterr().out  # 6 of each run's 10 from step 100


def test_the_synthesized_table_trains_as_planned_and_is_recognized() -> None:
    from lrexp.findings.law_study import optimized_lrs

    chosen = Table((0.0, 0.5, 0.75, 1.0), (1.0, 1.0, 0.4, 0.01))
    lrs = optimized_lrs(PEAK, chosen)
    planned_warmup = lrs[:WARMUP]
    expected = table_lrs(planned_warmup, PEAK, 950, np.array(chosen.at), np.array(chosen.values))
    assert len(lrs) == 1000 and np.allclose(lrs, expected, rtol=1e-12, atol=0)
    assert planned_warmup[0] == pytest.approx(0.1 * PEAK) and lrs[WARMUP] == pytest.approx(PEAK)
    assert chosen.matches(str(list(chosen.values)))  # MLflow logs the list as its str
    assert not chosen.matches(str([1.0, 1.0, 0.4, 0.02]))
    assert not chosen.matches(None) and not chosen.matches("not a list")


def test_the_verification_is_paired_by_seed_against_the_better_rival() -> None:
    results = Results(
        {
            "lm_cosine": {(0.004, s): {"val_full/loss": 1.80 + 0.01 * s} for s in range(5)},
            "lm_wsd_linear": {(0.002, s): {"val_full/loss": 1.77 + 0.01 * s} for s in range(5)},
        }
    )
    best = {"lm_cosine": 0.004, "lm_wsd_linear": 0.002}
    assert rival(results, best, 5) == "lm_wsd_linear"
    optimized = {
        s: {"val/loss": 1.70 + 0.01 * s + 0.003 * (s % 2), "val_full/loss": 1.8} for s in range(6)
    }
    rivals = {s: {"val/loss": 1.75 + 0.01 * s, "val_full/loss": 1.8} for s in range(5)}
    val, whole = verify_rows(optimized, rivals, margin=0.01)
    d = [optimized[s]["val/loss"] - rivals[s]["val/loss"] for s in range(5)]
    assert (val.paired.seeds, val.paired.stats.test) == (5, "t")
    assert val.paired.stats.delta == pytest.approx(np.mean(d), abs=1e-12)
    assert val.paired.stats.p == pytest.approx(stats.ttest_rel(d, np.zeros(5)).pvalue, rel=1e-9)
    assert val.verdict == "better"
    assert whole.paired.stats.delta == 0 and whole.verdict != "better"
    assert math.isfinite(whole.paired.stats.delta_low)
