"""Tasks beyond classification: the seeds' linear regression against exact gradient descent,
the convex testbed's design and optimum, verdicts on MSE and excess loss (lower is better),
and every mismatch as one line."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import run_cli
from lrexp.compare import main as compare_main
from lrexp.config.training import train_config
from lrexp.data.regression import ConvexRegression, SeedLinearRegression
from lrexp.tags import MODES_TAG, OBJECTIVE_TAG, TEST_METRIC_TAG
from lrexp.tasks import Regression

QUIET = ["logger.system_metrics=false"]


def test_the_seeds_linear_regression_is_exact_gradient_descent(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    """100 full-batch SGD steps at lr 0.01 from θ = 0: the logged θ after every step equals
    θ_{k+1} = θ_k − lr · (2/n) Xᵀ(Xθ_k − y), computed here in float64 on the same data."""
    cfg = make_cfg(
        "experiment=seed_linear_regression", f"logger.tracking_uri={tracking_uri}", *QUIET
    )
    result = train_config(cfg)
    assert result.global_step == 100 and result.objective == "val/mse"
    data = SeedLinearRegression()
    data.setup()
    x, y = (t.double() for t in data.full_split("train"))
    theta = torch.zeros(2, 1, dtype=torch.float64)
    expected = []
    for _ in range(100):
        theta = theta - 0.01 * (2 / len(x)) * x.T @ (x @ theta - y)
        expected.append(theta.flatten().tolist())
    client = MlflowClient(tracking_uri)
    logged = [
        [
            m.value
            for m in sorted(
                client.get_metric_history(str(result.run_id), f"theta/{i}"), key=lambda m: m.step
            )
        ]
        for i in (0, 1)
    ]
    assert np.allclose(np.array(logged).T, np.array(expected), rtol=1e-5, atol=1e-6)
    final = expected[-1]
    assert final == pytest.approx([1.5616, 1.8477], abs=1e-3)  # far from (2, 3) after 100 steps
    run = client.get_run(str(result.run_id))
    assert run.data.tags[OBJECTIVE_TAG] == "val/mse:min"
    assert run.data.tags[TEST_METRIC_TAG] == "test/mse"
    assert json.loads(run.data.tags[MODES_TAG])["test/excess"] == "min"
    # excess loss: L(θ) − L(θ*) on the training set, >= 0, from the exact least squares
    optimum = data.optimal_loss()["train"]
    mse = float(((x @ torch.tensor(final, dtype=torch.float64).unsqueeze(1) - y) ** 2).mean())
    assert result.metrics["train/excess"] == pytest.approx(mse - optimum, rel=1e-4)
    assert all(
        m.value >= -1e-6 for m in client.get_metric_history(str(result.run_id), "train/excess")
    )


def test_a_large_enough_lr_reaches_the_least_squares_fit(
    make_cfg: Callable[..., DictConfig],
) -> None:
    result = train_config(
        make_cfg("experiment=seed_linear_regression", "optimizer.lr=0.3", "logger=none")
    )
    data = SeedLinearRegression()
    data.setup()
    assert data.optimum is not None
    star = data.optimum.flatten().tolist()
    assert star == pytest.approx([2.0, 3.0], rel=0.01)  # 100 samples, noise 0.05
    assert result.metrics["train/excess"] == pytest.approx(0.0, abs=1e-5)


def test_the_convex_design_has_its_condition_number_and_optimum() -> None:
    data = ConvexRegression(samples=300, features=12, condition_number=250.0, noise=0.3, seed=4)
    data.setup()
    x, y = (t.double() for t in data.full_split("train"))
    hessian = 2 * x.T @ x / len(x)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert float(eigenvalues.max() / eigenvalues.min()) == pytest.approx(250.0, rel=1e-3)
    assert float(eigenvalues.max()) == pytest.approx(2.0, rel=1e-3)
    solution = np.linalg.lstsq(x.numpy(), y.numpy(), rcond=None)[0]
    residual = float(np.mean((x.numpy() @ solution - y.numpy()) ** 2))
    assert data.optimal_loss()["train"] == pytest.approx(residual, rel=1e-4)
    assert residual == pytest.approx(0.3**2 * (300 - 12) / 300, rel=0.2)  # the noise floor
    again = ConvexRegression(samples=300, features=12, condition_number=250.0, noise=0.3, seed=4)
    again.setup()
    assert torch.equal(again.full_split("test")[0], data.full_split("test")[0])


def test_regression_metrics_come_from_torchmetrics() -> None:
    task = Regression(1)
    out, target = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([[1.5], [2.0], [3.0]])
    task.update("val", out, target)
    sums = task.step_sums(out, target, task.loss(out, target))
    metrics = task.epoch_metrics("val", sums)
    mse = (0.25 + 0 + 1) / 3
    assert metrics["val/mse"] == pytest.approx(mse) and metrics["val/loss"] == pytest.approx(mse)
    assert metrics["val/rmse"] == pytest.approx(mse**0.5)
    variance = float(np.var([1.5, 2.0, 3.0]))
    assert metrics["val/r2"] == pytest.approx(1 - mse / variance, rel=1e-5)


def write_regression_sweep(uri: str, arms: dict[str, list[float]]) -> str:
    """A sweep of regression runs (as a regression task tags them): test/mse and test/excess
    per arm and seed, val/mse curves ending at it."""
    client = MlflowClient(uri)
    exp = client.create_experiment("regression")
    parent = client.create_run(exp, run_name="sweep").info.run_id
    modes = json.dumps(Regression(1).modes())
    for index, (arm, values) in enumerate(arms.items()):
        for seed, mse in enumerate(values):
            tags = {
                "mlflow.parentRunId": parent,
                "schedule": arm,
                "seed": str(seed),
                "init_digest": f"i{seed}",
                "order_digest": f"o{seed}",
                OBJECTIVE_TAG: "val/mse:min",
                TEST_METRIC_TAG: "test/mse",
                MODES_TAG: modes,
            }
            run = client.create_run(exp, run_name=f"{arm}-sgd-linear-convex-s{seed}", tags=tags)
            t0 = 1_700_000_000_000 + 1000 * (10 * index + seed)
            points = [Metric("lr", 0.1, t0 + s, s) for s in range(20)]
            points += [Metric("val/mse", mse * f, t0 + s, s) for s, f in ((10, 1.5), (20, 1.0))]
            points += [Metric("val/loss", mse * f, t0 + s, s) for s, f in ((10, 1.5), (20, 1.0))]
            points += [
                Metric("test/mse", mse, t0 + 30, 20),
                Metric("test/excess", mse - 0.25, t0 + 30, 20),
            ]
            params = [Param("schedule.name", arm), Param("seed", str(seed))]
            client.log_batch(run.info.run_id, points, params, [])
            client.set_terminated(run.info.run_id, "FINISHED", end_time=t0 + 500)
    return parent


@pytest.mark.parametrize("metric", [None, "test/excess"])
def test_compare_gives_verdicts_where_lower_is_better(tmp_path: Path, metric: str | None) -> None:
    rng = np.random.default_rng(0)
    base = 0.30 + rng.normal(0, 0.004, 10)
    arms = {
        "cosine": [round(float(v), 5) for v in base],
        "lower": [round(float(v), 5) for v in base - 0.02 + rng.normal(0, 0.001, 10)],
        "higher": [round(float(v), 5) for v in base + 0.02 + rng.normal(0, 0.001, 10)],
    }
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    parent = write_regression_sweep(uri, arms)
    out = tmp_path / "cmp"
    args = ["--tracking-uri", uri, "--parent", parent, "--out", str(out), "--baseline", "cosine"]
    compare_main([*args, "--equivalence", "0.001", *(["--metric", metric] if metric else [])])
    with (out / "summary.csv").open() as handle:
        rows = {r["configuration"]: r for r in csv.DictReader(handle)}
    verdicts = {label.split("-")[0]: row["verdict"] for label, row in rows.items()}
    assert verdicts == {"cosine": "baseline", "lower": "better", "higher": "worse"}
    assert next(iter(rows)).startswith("lower")  # best first: the lowest mean
    summary = json.loads((out / "summary.json").read_text())
    assert summary["higher_is_better"] is False
    assert summary["metric"] == (metric or "test/mse")


BAD_TASKS = [
    (["task=regression"], "task: regression needs real-valued targets, but digits gives class"),
    (
        ["dataset=convex", "model=linear"],
        "task: classification needs class labels, but convex gives real-valued targets; use "
        "task=regression",
    ),
    (
        ["task=regression", "dataset=convex", "model=linear", "+model.num_outputs=3"],
        "model: gives outputs of shape (2, 3) for 2 examples, but the data has 1 target values "
        "per example: expected (2, 1)",
    ),
    (
        ["task=regression", "dataset=convex", "model=linear", "dataset.condition_number=0.5"],
        "dataset.condition_number: condition_number must be a finite number >= 1, got 0.5",
    ),
    (
        ["task=regression", "dataset=convex", "model=linear", "dataset.noise=-0.1"],
        "dataset.noise: noise must be a number >= 0, got -0.1",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_TASKS, ids=[" ".join(a) for a, _ in BAD_TASKS])
def test_a_task_that_does_not_fit_is_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lrexp: error: {message}"), result.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "outputs").exists()


def test_a_regression_run_resumes_mid_epoch_exactly(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, tracking_uri: str
) -> None:
    """Stopped at step 150 (batch 50 of epoch 2) and resumed: the same excess-loss curve and
    test MSE, bit for bit, as a run that never stopped."""
    import signal

    import pytorch_lightning as pl

    class InterruptAt(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, *_: object) -> None:
            if trainer.global_step == 150 and not trainer.fit_loop.restarting:
                raise KeyboardInterrupt

    base = ["task=regression", "dataset=convex", "model=linear", "trainer.max_epochs=3"]
    base += [f"logger.tracking_uri={tracking_uri}", *QUIET]
    whole = train_config(make_cfg(*base, f"paths.output_dir={tmp_path}/whole"))
    with pytest.raises(SystemExit):
        train_config(make_cfg(*base, f"paths.output_dir={tmp_path}/cut"), callbacks=[InterruptAt()])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    resumed = train_config(make_cfg(*base, f"paths.output_dir={tmp_path}/cut", f"ckpt_path={last}"))
    assert resumed.metrics["test/mse"] == whole.metrics["test/mse"]
    client = MlflowClient(tracking_uri)

    def curve(run_id: str | None) -> list[tuple[int, float]]:
        return sorted(
            (m.step, m.value) for m in client.get_metric_history(str(run_id), "train/excess")
        )

    assert curve(resumed.run_id) == curve(whole.run_id)
    steps = [s for s, _ in curve(whole.run_id)]
    assert steps[:3] == [100, 200, 300]
    # one point per validation: the test of the best checkpoint logs test/excess only
    assert len(steps) == len(set(steps))


@pytest.mark.slow
def test_a_regression_search_minimizes_val_mse(tmp_path: Path) -> None:
    """The search's direction follows the task: a regression study minimizes ``val/mse`` and
    its best trial is the one with the lowest."""
    import optuna

    result = run_cli(
        [
            "hparams_search=optuna_lr",
            "task=regression",
            "dataset=convex",
            "model=linear",
            "hydra.sweeper.n_trials=3",
            "trainer.max_steps=40",
            "trainer.enable_progress_bar=false",
            *QUIET,
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    values = [t.value for t in study.trials if t.value is not None]
    assert len(values) == 3 and study.best_value == min(values)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    best = client.get_run(study.best_trial.user_attrs["mlflow_run_id"])
    assert best.data.metrics["val/mse"] == pytest.approx(study.best_value)
