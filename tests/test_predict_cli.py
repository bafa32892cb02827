"""``lrexp-predict`` end to end on a real MLflow SQLite store: a sweep whose runs follow the
Multi-Power Law with seed noise (written through MLflow's client), then fit, predict, check
and bound through the command line."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lrexp.predict.check import constant_power_r2, trust_warnings
from lrexp.predict.cli import main
from lrexp.predict.laws import Curve, MultiPowerLaw, predict_curve

TRUE = np.array([0.3, 0.9, 0.55, 6.0, 4.0, 0.6, 0.5])
TOTAL = 200
PEAK = 0.1


def lrs_of(name: str) -> np.ndarray:
    t = np.arange(TOTAL)
    if name == "cosine":
        return PEAK * 0.5 * (1 + np.cos(np.pi * t / TOTAL))
    if name == "wsd":
        return PEAK * np.clip((TOTAL - t) / (0.2 * TOTAL), 0, 1)
    if name == "linear":
        return PEAK * (1 - t / TOTAL)
    if name == "two_stage":
        return PEAK * np.where(t < TOTAL // 2, 1.0, 0.3)
    return np.full(TOTAL, PEAK)


SCHEDULES = ("constant", "cosine", "two_stage", "wsd")


def write_sweep(uri: str, seeds: int = 8, noise: float = 0.002) -> str:
    """A parent run whose children are SCHEDULES x seeds, with the lr trace and the windowed
    training loss; seed noise is shared by the runs of a seed (paired)."""
    client = MlflowClient(uri)
    experiment = client.create_experiment("sweep")
    parent = client.create_run(experiment, run_name="parent").info.run_id
    steps = np.arange(20, TOTAL + 1, 20)
    for seed in range(seeds):
        shift = np.random.default_rng(seed).normal(0, noise)
        for name in SCHEDULES:
            lrs = lrs_of(name)
            loss = predict_curve(MultiPowerLaw(), TRUE, lrs, steps) * np.exp(
                shift + np.random.default_rng(seed * 100 + len(name)).normal(0, noise, len(steps))
            )
            tags = [RunTag("mlflow.parentRunId", parent)]
            run = client.create_run(experiment, run_name=f"{name}-s{seed}", tags={})
            rid = run.info.run_id
            metrics = [Metric("lr", float(v), 0, int(k)) for k, v in enumerate(lrs)]
            metrics += [
                Metric("train/loss_window", float(v), 0, int(s))
                for s, v in zip(steps, loss, strict=True)
            ]
            metrics += [
                Metric("val/loss", float(loss[i]) * 1.01, 0, int(steps[i])) for i in (2, 5, 9)
            ]
            params = [Param("schedule.name", name), Param("seed", str(seed))]
            for i in range(0, len(metrics), 900):
                client.log_batch(rid, metrics=metrics[i : i + 900])
            client.log_batch(rid, params=params, tags=tags)
            client.set_terminated(rid)
    client.set_terminated(parent)
    return parent


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{root}/mlflow.db"
    return uri, write_sweep(uri)


def test_fit_then_predict(
    sweep: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, parent = sweep
    status = main(
        ["fit", "--tracking-uri", uri, "--parent", parent, "--laws", "mpl", "tissue",
         "--resamples", "40", "--out", str(tmp_path / "fit")]
    )  # fmt: skip
    fitted = capsys.readouterr()
    assert status == 0, fitted.err
    data = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert len(data["runs"]) == 32
    assert {r["loss_key"] for r in data["runs"]} == {"train/loss_window"}
    mpl = data["laws"]["mpl"]
    assert mpl["params"]["L0"] == pytest.approx(TRUE[0], rel=0.1)
    assert len(mpl["resamples"]) == 40
    for law in ("mpl", "tissue"):  # an estimate outside its interval is printed with why
        fit = data["laws"][law]
        outside = [
            k for k, (low, high) in fit["interval"].items() if not low <= fit["params"][k] <= high
        ]
        line = next(
            (x for x in fitted.out.splitlines() if x.startswith(f"  {', '.join(outside)} outside")),
            None,
        )
        assert (line is not None) == bool(outside), fitted.out

    out = tmp_path / "pred"
    status = main(
        ["predict", "--fit", str(tmp_path / "fit" / "fit.json"), "schedule=cosine,wsd",
         "trainer.max_epochs=5", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert status == 0
    assert "schedule=cosine [mpl]: final loss" in printed and "95% over seed resamples" in printed
    with (out / "predict.csv").open() as handle:
        header = next(csv.reader(handle))
    assert "schedule=wsd [tissue]" in header and (out / "predict.png").stat().st_size > 0


def test_the_default_baseline_is_cosine_else_the_first_schedule() -> None:
    from lrexp.predict.cli import default_baseline

    assert default_baseline(["wsd", "cosine", "constant"]) == "cosine"
    assert default_baseline(["wsd", "linear", "constant"]) == "constant"


def test_too_few_resamples_are_refused_in_one_line(
    sweep: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--resamples 5`` printed ``L0=0.05405 [0.07971, 0.07971]`` (an interval of zero width
    that excludes its estimate); below 40 resamples, fit and check refuse."""
    uri, parent = sweep
    for command in ("fit", "check"):
        with pytest.raises(SystemExit) as caught:
            main([command, "--tracking-uri", uri, "--parent", parent, "--resamples", "5",
                  "--out", str(tmp_path / command)])  # fmt: skip
        assert caught.value.code == 2
        assert (
            "argument --resamples: must be 0 (no intervals) or at least 40, got 5"
            in capsys.readouterr().err
        )
    assert not (tmp_path / "fit").exists()


def test_the_fitted_loss_can_be_named(
    sweep: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--loss val/loss`` fits the validation points (3 per run here, 1 % above the training
    loss); a key no run has is one line, exit 2."""
    uri, parent = sweep
    fit_dir = tmp_path / "fit"
    status = main(
        ["fit", "--tracking-uri", uri, "--parent", parent, "--loss", "val/loss", "--laws",
         "tissue", "--resamples", "0", "--out", str(fit_dir)]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    data = json.loads((fit_dir / "fit.json").read_text())
    assert {r["loss_key"] for r in data["runs"]} == {"val/loss"} and len(data["runs"]) == 32
    assert data["laws"]["tissue"]["points"] == 32 * 3
    status = main(
        ["fit", "--tracking-uri", uri, "--parent", parent, "--loss", "val/nosuch", "--out",
         str(tmp_path / "no")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1] == "lrexp-predict: error: no selected run has an lr trace and val/nosuch"


def test_check_reports_small_held_out_errors(
    sweep: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, parent = sweep
    out = tmp_path / "check"
    status = main(
        ["check", "--tracking-uri", uri, "--parent", parent, "--laws", "mpl", "--out", str(out)]
    )  # without --baseline: cosine, which these runs have, and it says so
    err = capsys.readouterr().err
    assert status == 0, err
    assert (
        "lrexp-predict: baseline cosine (of constant, cosine, two_stage, wsd; --baseline picks "
        "another)" in err.splitlines()
    )
    data = json.loads((out / "check.json").read_text())
    (law,) = data["laws"]
    held = {h["label"]: h for h in law["held_out"]}
    assert set(held) == {"constant", "two_stage", "wsd"}
    for name, h in held.items():
        lrs = lrs_of(name)
        truth = predict_curve(MultiPowerLaw(), TRUE, lrs, np.array([TOTAL]))[0]
        assert abs(h["measured"] / truth - 1) < 0.01
        assert abs(h["rel_error"]) < 0.01, (name, h)
        assert h["abs_error"] == pytest.approx(h["predicted"] - h["measured"])
    # the constant run is clearly worse than cosine: verdict worse, predicted order agrees
    assert held["constant"]["verdict"] == "worse" and held["constant"]["agrees"] is True
    for name in ("check.md", "check.png", "check.html"):
        assert (out / name).stat().st_size > 0
    assert "<table>" in (out / "check.html").read_text()


def test_bound_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bound"
    status = main(
        ["bound", "schedule=cosine,wsd", "trainer.max_epochs=10", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert status == 0
    rows = list(csv.DictReader((out / "bound.csv").open()))
    assert [r["config"] for r in rows] == ["schedule=cosine", "schedule=wsd"]
    ratio = float(rows[1]["optimal_lr_ratio"])
    assert 0.4 < ratio < 0.65  # WSD's optimal LR about half cosine's
    assert float(rows[1]["transferred_lr"]) == pytest.approx(0.1 * ratio)
    assert "optimizer.lr=" in printed


def test_bad_selection_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["fit", "--tracking-uri", f"sqlite:///{tmp_path}/none.db", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("lrexp-predict: error:")


def test_trust_checks_flag_what_the_laws_cannot_fit() -> None:
    lrs = np.full(100, 0.1)
    steps = np.arange(10, 101, 10)
    flat = Curve(lrs, steps, np.full(10, 1.0), "constant", "0", "r1")
    power = Curve(lrs, steps, 0.2 + (np.cumsum(lrs)[steps - 1]) ** -0.5, "constant", "0", "r2")
    zigzag = Curve(
        lrs, steps, 0.5 + 0.2 * (np.arange(10) % 2) + np.linspace(0.5, 0, 10), "c", None, "r3"
    )
    val = {"r2": [(20, 0.5), (50, 0.4), (100, 0.6)]}
    lines = trust_warnings([flat, power, zigzag], val)
    assert any("constant (seed 0): the training loss does not decrease" in w for w in lines)
    assert any("validation loss rises from 0.4" in w for w in lines)
    assert constant_power_r2(power) == pytest.approx(1.0, abs=1e-5)
    assert any("not close to a power law" in w for w in lines)
    assert constant_power_r2(Curve(lrs_of("cosine")[:100], steps, np.ones(10))) is None


def test_optimize_writes_a_tabulated_schedule_that_trains_as_planned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from omegaconf import OmegaConf

    from lrexp.predict.commands import planned
    from lrexp.schedules import build_schedule

    names = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
    params = dict(zip(names, TRUE.tolist(), strict=True))
    mpl = {"params": params, "objective": 0.0, "points": 0, "curves": 0, "resamples": []}
    fit = {"laws": {"mpl": mpl}}
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    config = ["schedule=cosine", "trainer.max_epochs=5", "schedule.warmup.steps=10"]
    out = tmp_path / "opt"
    status = main(["optimize", "--fit", str(tmp_path / "fit.json"), *config, "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    given = float(printed.split("predicted final loss ")[1].split()[0])
    optimized = float(printed.split("predicted final loss ")[2].split()[0])
    assert optimized < given  # better than cosine by the law's own account
    table = OmegaConf.to_container(OmegaConf.load(out / "tabulated.yaml"))
    assert isinstance(table, dict) and table["warmup"]["steps"] == 10
    values = table["values"]
    assert values[0] == 1.0 and all(b <= a for a, b in itertools.pairwise(values))
    # the printed overrides plan exactly the LRs the law was optimized on
    line = next(x for x in printed.splitlines() if x.startswith("run it with: "))
    overrides = [w.strip("'") for w in line.removeprefix("run it with: ").split()]
    (ours,) = planned([*config[1:], *overrides])
    lrs = 0.1 * np.concatenate(
        (
            [
                build_schedule({"name": "constant", "warmup": {"steps": 10}}, 200).lr_at(t)
                for t in range(10)
            ],
            np.interp(np.arange(190) / 190, table["at"], values),
        )
    )
    assert len(ours.lrs) == 200
    np.testing.assert_allclose(ours.lrs, lrs, rtol=1e-12, atol=1e-15)
    rebuilt = predict_curve(MultiPowerLaw(), TRUE, ours.lrs, np.array([200]))[0]
    assert rebuilt == pytest.approx(optimized, rel=1e-4)


def test_check_flags_held_out_residuals_above_the_seed_noise() -> None:
    """A held-out schedule whose runs sit 5 % above the law (seed sd about 0.1 %) gives a
    residual far above the seed-to-seed noise: one trust line, and the error is measured."""
    from lrexp.predict.check import leave_one_out

    steps = np.arange(20, TOTAL + 1, 20)
    curves = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for name in SCHEDULES:
            lrs = lrs_of(name)
            bias = 1.05 if name == "wsd" else 1.0
            loss = bias * predict_curve(MultiPowerLaw(), TRUE, lrs, steps)
            curves.append(
                Curve(lrs, steps, loss * np.exp(rng.normal(0, 0.001, len(steps))), name, str(seed))
            )
    result = leave_one_out(MultiPowerLaw(), curves, baseline="cosine")
    wsd = next(h for h in result.held_out if h.label == "wsd")
    assert wsd.rel_error == pytest.approx(-0.05 / 1.05, abs=0.01)
    (line,) = result.warnings
    assert "held-out residuals" in line and "larger than the seed-to-seed noise" in line
