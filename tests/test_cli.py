"""Real `python train.py` runs in subprocesses, inspected through a real MLflow SQLite store."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import CONF, run_cli
from lrexp.schedules import REGISTRY, build_schedule

DIGITS_TRAIN = 1797 - 360 - 180  # 1257 examples
STEPS_PER_EPOCH = math.ceil(DIGITS_TRAIN / 32)  # 40 batches of 32


def store(cwd: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")


def runs_of(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("lrexp")
    assert experiment is not None, "no experiment was created"
    return client.search_runs([experiment.experiment_id])


def test_default_run_records_exact_lr_trace(tmp_path: Path) -> None:
    result = run_cli(["trainer.max_epochs=2", "trainer.enable_progress_bar=false"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mlflow ui --backend-store-uri" in result.stdout
    console = result.stdout + result.stderr
    for noise in ("Creating initial MLflow database tables", "system metrics", "💡 Tip"):
        assert noise not in console

    client = store(tmp_path)
    (run,) = runs_of(client)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "cosine-sgd-mlp-digits-s0"
    tags = run.data.tags
    assert {k: tags[k] for k in ("dataset", "model", "optimizer", "schedule", "seed")} == {
        "dataset": "digits",
        "model": "mlp",
        "optimizer": "sgd",
        "schedule": "cosine",
        "seed": "0",
    }
    assert run.data.params["optimizer.lr"] == "0.1"
    assert run.data.params["schedule.warmup.shape"] == "linear"

    history = sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda m: m.step)
    total = 2 * STEPS_PER_EPOCH
    assert [m.step for m in history] == list(range(total))
    for point in history:
        expected = 0.1 * (1 + math.cos(math.pi * point.step / total)) / 2
        assert point.value == pytest.approx(expected, rel=1e-12, abs=1e-15)

    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert key in run.data.metrics, key
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2
    assert run.data.metrics["test/acc"] > 0.5

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    run_files = {"resolved_config.yaml", "planned_lr.csv", "lr_plan.png", "learning_curves.png"}
    assert run_files | {"metric_history.npz"} <= artifacts
    plan_csv = client.download_artifacts(run.info.run_id, "planned_lr.csv", str(tmp_path))
    with open(plan_csv, newline="") as handle:
        planned = [(int(row["step"]), float(row["planned_lr"])) for row in csv.DictReader(handle)]
    assert planned == [(m.step, pytest.approx(m.value, rel=1e-12)) for m in history]
    last = Path(tags["checkpoint"])
    assert last.name == "last.ckpt" and last.is_file()
    assert last.parent.name == "checkpoints" and Path(tags["output_dir"]) == last.parent.parent
    assert any(p.name.startswith("best") for p in last.parent.iterdir())


def test_exponential_adam_from_the_readme(tmp_path: Path) -> None:
    result = run_cli(
        ["schedule=exponential", "optimizer=adam", "trainer.max_steps=50"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = store(tmp_path)
    (run,) = runs_of(client)
    history = sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(50))
    for point in history:  # gamma 0.9 per epoch of 40 steps
        assert point.value == pytest.approx(1e-3 * 0.9 ** (point.step / 40), rel=1e-12)


@pytest.mark.slow
def test_every_family_from_the_cli_matches_its_closed_form(tmp_path: Path) -> None:
    families = sorted(p.stem for p in (CONF / "schedule").glob("*.yaml"))
    # every family, and `torch` (a torch.optim.lr_scheduler class, tabulated)
    assert set(families) == {*REGISTRY, "torch"}
    result = run_cli(
        [
            "-m",
            f"schedule={','.join(families)}",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from hydra import compose, initialize_config_dir

    client = store(tmp_path)
    runs = {r.data.tags["schedule"]: r for r in runs_of(client) if "schedule" in r.data.tags}
    assert set(runs) == set(families)
    total = 3 * STEPS_PER_EPOCH
    for family, run in runs.items():
        assert run.info.status == "FINISHED", family
        history = sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda m: m.step)
        assert [m.step for m in history] == list(range(total)), family
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("config", overrides=[f"schedule={family}"], return_hydra_config=False)
        lr = float(cfg.optimizer.lr)
        schedule = build_schedule(cfg.schedule, total, lr, STEPS_PER_EPOCH)
        if schedule.metric_driven:
            # value changes only right after a validation, i.e. at epoch boundaries
            changes = [m.step for a, m in itertools.pairwise(history) if m.value != a.value]
            assert all(step % STEPS_PER_EPOCH == 0 for step in changes), (family, changes)
            assert history[0].value == pytest.approx(lr * schedule.lr_at(0), rel=1e-12)
            continue
        for point in history:
            assert point.value == pytest.approx(lr * schedule.lr_at(point.step), rel=1e-12), (
                family,
                point.step,
            )


TINY = "trainer.max_steps=10"
EXPERIMENT_BUDGETS = {
    # experiment -> (overrides that shrink the sweep, the runs' lr steps by run name prefix)
    "seed_comparison": (
        ["dataset=digits", TINY],
        {"linear": 10, "exponential": 10, "step": 10, "constant": 10},
    ),
    "schedule_study": (
        [
            "dataset=digits",
            TINY,
            "hydra.sweeper.params.schedule='cosine,onecycle'",
            "hydra.sweeper.params.seed=0",
        ],
        {"cosine-momentum": 10, "cosine-adam": 10, "onecycle-momentum": 10, "onecycle-adam": 10},
    ),
    "cooldown_study": (  # the trunk's length is the study's: its kept steps need it
        [
            "dataset=digits",
            "model=mlp",
            "hydra.sweeper.params.study_arm='cooldown_trunk,cooldown_sqrt_140,cooldown_cosine_175'",
            "hydra.sweeper.params.seed=0",
            "hydra.sweeper.max_batch_size=1",  # one arm per batch: as many jobs as seeds
        ],
        {"constant": 1120, "cooldown-sqrt@140": 35, "cosine": 175},
    ),
    "convex_study": (
        [TINY, "hydra.sweeper.params.schedule='cosine,wsd'", "hydra.sweeper.params.seed=0"],
        {"cosine": 10, "wsd": 10},
    ),
    "powerlaw_study": (
        [
            "dataset.steps=100",
            "logger.experiment_name=lrexp",
            TINY,
            "hydra.sweeper.params.schedule='cosine,wsd'",
            "hydra.sweeper.params.seed=0",
        ],
        {"cosine": 10, "wsd": 10},
    ),
    "seed_linear_regression": ([], {"constant": 100}),  # one run: the seed's 100 steps
    "lm_findings": (
        [
            "trainer.max_steps=20",
            "logger.experiment_name=lrexp",
            "schedule.warmup.steps=5",
            "trainer.val_check_interval=10",
            "model.n_layer=1",
            "hydra.sweeper.params.study_arm=lm_wsd_sqrt",
        ],
        {"wsd": 20},
    ),
    "lm": (
        [
            "trainer.max_steps=20",
            "logger.experiment_name=lrexp",
            "schedule.warmup.steps=5",
            "trainer.val_check_interval=10",
            "model.n_layer=1",
        ],
        {"cosine": 20},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_runs_with_a_tiny_budget(tmp_path: Path, experiment: str) -> None:
    assert experiment in EXPERIMENT_BUDGETS, f"give {experiment} a tiny budget here"
    extra, steps = EXPERIMENT_BUDGETS[experiment]
    result = run_cli(
        [f"experiment={experiment}", *extra, "trainer.enable_progress_bar=false"],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    children = [r for r in runs_of(store(tmp_path)) if r.data.tags.get("sweep") != "parent"]
    assert {r.info.status for r in children} == {"FINISHED"}
    observed = {
        r.info.run_name: len(store(tmp_path).get_metric_history(r.info.run_id, "lr"))
        for r in children
    }
    assert len(observed) == len(steps), observed
    for prefix, count in steps.items():
        (name,) = [n for n in observed if n.startswith(prefix + "-")]
        assert observed[name] == count, (name, observed)
