"""``lrexp-predict`` on real training runs, as the README runs it: a small ``powerlaw_study``
(single-pass least squares, where the laws hold) trained by a real Trainer into a real SQLite
store, then check, fit, predict and optimize on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import DictConfig

from lrexp.config.training import train_config
from lrexp.predict.cli import main

STUDY = ["experiment=powerlaw_study", "hydra.mode=RUN", "dataset.steps=300"]
STUDY += ["trainer.val_check_interval=30", "logger.system_metrics=false"]
SCHEDULES = ("constant", "cosine", "wsd", "linear")


def final_val_loss(client: MlflowClient, run_id: str) -> float:
    return max(client.get_metric_history(run_id, "val/loss"), key=lambda m: m.step).value


@pytest.mark.slow
def test_check_fit_predict_optimize_on_a_real_sweep(
    make_cfg: Callable[..., DictConfig],
    tracking_uri: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    measured: dict[str, list[float]] = {name: [] for name in SCHEDULES}
    client = MlflowClient(tracking_uri)
    for name in SCHEDULES:
        for seed in (0, 1):
            overrides = [*STUDY, f"schedule={name}", f"seed={seed}"]
            result = train_config(make_cfg(*overrides, f"logger.tracking_uri={tracking_uri}"))
            measured[name].append(final_val_loss(client, str(result.run_id)))
    select = ["--tracking-uri", tracking_uri, "--experiment", "powerlaw_study"]
    select += ["--loss", "val/loss", "--laws", "tissue"]

    out = tmp_path / "check"
    assert main(["check", *select, "--baseline", "cosine", "--out", str(out)]) == 0
    report = json.loads((out / "check.json").read_text())
    (tissue,) = report["laws"]
    held = {h["label"]: h for h in tissue["held_out"]}
    assert set(held) == {"constant", "wsd", "linear"}
    finals = {name: float(np.mean(values)) for name, values in measured.items()}
    law_errors, naive_errors = [], []
    for label, h in held.items():
        assert h["measured"] == pytest.approx(finals[label], rel=1e-9)
        assert abs(h["rel_error"]) < 0.025, (label, h)  # the law holds here: within 2.5 %
        others = [v for name, v in finals.items() if name != label]
        law_errors.append(abs(h["predicted"] - finals[label]))
        naive_errors.append(abs(np.mean(others) - finals[label]))
    # better than guessing the mean final loss of the schedules it was fitted on
    assert np.mean(law_errors) < 0.5 * np.mean(naive_errors), (law_errors, naive_errors)

    fit_dir = tmp_path / "fit"
    assert main(["fit", *select, "--resamples", "0", "--out", str(fit_dir)]) == 0
    fit = json.loads((fit_dir / "fit.json").read_text())
    assert {r["loss_key"] for r in fit["runs"]} == {"val/loss"} and len(fit["runs"]) == 8
    capsys.readouterr()
    config = [*STUDY[:1], *STUDY[2:3], "schedule=wsd"]
    assert (
        main(["predict", "--fit", str(fit_dir / "fit.json"), *config, "--out", str(tmp_path)]) == 0
    )
    line = next(x for x in capsys.readouterr().out.splitlines() if "[tissue]: final loss" in x)
    predicted = float(line.split("final loss ")[1].split()[0])
    assert predicted == pytest.approx(np.mean(measured["wsd"]), rel=0.05)

    optimize = ["optimize", "--fit", str(fit_dir / "fit.json"), "--law", "tissue"]
    assert main([*optimize, *STUDY[:1], *STUDY[2:3], "schedule=cosine", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    given, found = (
        float(x.split("predicted final loss ")[1].split()[0])
        for x in printed.splitlines()
        if "predicted final loss" in x
    )
    assert found <= given  # never worse than the schedule it starts from, by the law
    assert (out / "tabulated.yaml").read_text().startswith("# lrexp-predict optimize (tissue)")
