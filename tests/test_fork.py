"""Cooldown forks from a trunk's kept checkpoints, with real Trainers, real CLI runs and a real
MLflow store: a fork equals the WSD run it stands for, bit for bit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import CONF, run_cli, tmp_overrides
from lrexp.config.training import train_config
from lrexp.errors import ConfigError
from lrexp.run.train import RunResult

WARMUP = 10
DETERMINISTIC = ["trainer.deterministic=true", "schedule.warmup.steps=10"]


def lr_trace(client: MlflowClient, run_id: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, "lr"))


def last_weights(result: RunResult) -> dict[str, torch.Tensor]:
    path = result.output_dir / "checkpoints" / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def run_count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("select count(*) from runs").fetchone()[0])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder (and MLflow store) for the module's trunk and its forks."""
    return tmp_path_factory.mktemp("forks")


@pytest.fixture
def tracking_uri(shared: Path) -> str:
    return f"sqlite:///{shared}/mlruns/mlflow.db"


@pytest.fixture(scope="module")
def trunk(shared: Path) -> RunResult:
    """A warmup + constant trunk of 100 steps (40 per epoch) keeping steps 40 and 50."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *tmp_overrides(shared),
                "schedule=constant",
                "trainer.max_steps=100",
                "callbacks.checkpoint.keep_steps=[40,50]",
                f"logger.tracking_uri=sqlite:///{shared}/mlruns/mlflow.db",
                f"paths.output_dir={shared}/trunk",
                *DETERMINISTIC,
            ],
        )
    return train_config(cfg)


def test_a_trunk_keeps_and_records_its_steps(trunk: RunResult, tracking_uri: str) -> None:
    folder = trunk.output_dir / "checkpoints"
    for step in (40, 50):
        checkpoint = torch.load(folder / f"step-{step}.ckpt", map_location="cpu", weights_only=True)
        assert checkpoint["global_step"] == step
    tags = MlflowClient(tracking_uri).get_run(str(trunk.run_id)).data.tags
    assert tags["kept_steps"] == "40,50"
    assert tags["kept_checkpoints"] == str(folder)


@pytest.mark.slow
@pytest.mark.parametrize("at", [50, 40], ids=["mid-epoch", "epoch-end"])
def test_a_linear_fork_equals_the_wsd_run_bitwise(
    make_cfg: Callable[..., DictConfig],
    tmp_path: Path,
    tracking_uri: str,
    trunk: RunResult,
    at: int,
) -> None:
    length = 30
    common = [f"logger.tracking_uri={tracking_uri}", *DETERMINISTIC]
    fork = train_config(
        make_cfg(
            "fork=cooldown",
            f"fork.from={trunk.run_id}",
            f"fork.at={at}",
            f"fork.length={length}",
            f"paths.output_dir={tmp_path}/fork",
            *common,
        )
    )
    wsd = train_config(
        make_cfg(
            "schedule=wsd",
            "schedule.warmup.frac=null",
            f"schedule.decay_frac={length / (at + length - WARMUP)}",
            f"trainer.max_steps={at + length}",
            f"paths.output_dir={tmp_path}/wsd",
            *common,
        )
    )
    client = MlflowClient(tracking_uri)
    reference = lr_trace(client, str(wsd.run_id))
    assert lr_trace(client, str(trunk.run_id))[:at] == reference[:at]
    forked = lr_trace(client, str(fork.run_id))
    assert [step for step, _ in forked] == list(range(at, at + length))  # the trunk's axis
    assert forked == reference[at:]  # bitwise equal LRs
    assert fork.global_step == wsd.global_step == at + length
    expected, observed = last_weights(wsd), last_weights(fork)
    assert expected.keys() == observed.keys()
    for key in expected:
        assert torch.equal(expected[key], observed[key]), key
    fork_run, wsd_run = client.get_run(str(fork.run_id)), client.get_run(str(wsd.run_id))
    for key in ("val/acc", "val/loss", "train/loss"):
        assert fork_run.data.metrics[key] == wsd_run.data.metrics[key], key
    tags = fork_run.data.tags
    assert tags["fork_of"] == trunk.run_id
    assert (tags["fork_at"], tags["fork_shape"], tags["fork_length"]) == (str(at), "linear", "30")
    assert fork_run.info.status == "FINISHED"
    assert (
        fork_run.data.params["model.name"]
        == client.get_run(str(trunk.run_id)).data.params["model.name"]
    )


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["fork.at=45"], "fork.at: run {trunk} kept no checkpoint at step 45 (kept: 40, 50)"),
        (["fork.at=40", "model.hidden_sizes=[32]"], "fork.from: the trunk was trained with"),
        (["fork.at=40", "optimizer.lr=0.5"], "fork.from: the trunk was trained at optimizer.lr"),
        (
            ["fork.at=40", "averaging=ema"],
            "averaging: a cooldown fork keeps its trunk's weight averaging: the trunk had none, "
            "this fork {{'name': 'ema', 'decay': 0.999}}",
        ),
        (["fork.at=40", "fork.shape=exp"], "fork.min_factor: must be > 0 for an exp decay"),
        (["fork.at=40", "fork.length=0"], "fork.length: must be an integer >= 1"),
        (["fork.from=" + "a" * 32], "fork.from: no run aaaa"),
        (["fork.from=nope", "fork.at=40"], "fork.from: 'nope' is no checkpoint file, checkpoint"),
    ],
    ids=[
        "missing-step",
        "other-model",
        "other-lr",
        "other-averaging",
        "exp-floor",
        "length",
        "no-run",
        "no-file",
    ],
)
def test_bad_forks_are_one_line_before_any_run(
    make_cfg: Callable[..., DictConfig],
    trunk: RunResult,
    tracking_uri: str,
    overrides: list[str],
    line: str,
) -> None:
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    before = run_count(database)
    cfg = make_cfg(
        "fork=cooldown",
        f"fork.from={trunk.run_id}",
        f"logger.tracking_uri={tracking_uri}",
        *overrides,
    )
    with pytest.raises(ConfigError) as raised:
        train_config(cfg)
    assert str(raised.value).startswith(line.format(trunk=trunk.run_id))
    assert "\n" not in str(raised.value)
    assert run_count(database) == before


def test_a_trunk_that_kept_nothing_is_named(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, tracking_uri: str
) -> None:
    plain = train_config(
        make_cfg(
            "trainer.max_steps=5",
            f"logger.tracking_uri={tracking_uri}",
            f"paths.output_dir={tmp_path}/plain",
        )
    )
    with pytest.raises(ConfigError, match=f"fork.from: run {plain.run_id} kept no checkpoints"):
        train_config(
            make_cfg(
                "fork=cooldown", f"fork.from={plain.run_id}", f"logger.tracking_uri={tracking_uri}"
            )
        )


@pytest.mark.slow
def test_forks_from_the_cli_in_a_multirun_and_from_a_path(tmp_path: Path) -> None:
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    trunk = run_cli(
        ["hydra.run.dir=trunk", "schedule=constant", "trainer.max_steps=40",
         "callbacks.checkpoint.keep_every_n_steps=20", *quiet],
        cwd=tmp_path,
    )  # fmt: skip
    assert trunk.returncode == 0, trunk.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (trunk_run,) = client.search_runs([client.search_experiments()[0].experiment_id])
    trunk_id = trunk_run.info.run_id
    assert trunk_run.data.tags["kept_steps"] == "20,40"

    database = tmp_path / "mlruns" / "mlflow.db"
    refused = run_cli(
        ["-m", "fork=cooldown", f"fork.from={trunk_id}", "fork.at=20,30", *quiet], cwd=tmp_path
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"lrexp: error: fork.at: run {trunk_id} kept no checkpoint at step 30 (kept: 20, 40)"
    ]
    assert run_count(database) == 1  # no sweep parent, no child

    sweep = run_cli(
        ["-m", "fork=cooldown", f"fork.from={trunk_id}", "fork.at=20,40",
         "fork.shape=linear,sqrt", "fork.length=8", *quiet],
        cwd=tmp_path,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    runs = client.search_runs([trunk_run.info.experiment_id])
    forks = [r for r in runs if r.data.tags.get("fork_of") == trunk_id]
    parents = {r.data.tags.get("mlflow.parentRunId") for r in forks}
    assert len(forks) == 4 and len(parents) == 1 and None not in parents
    assert {(r.data.tags["fork_at"], r.data.tags["fork_shape"]) for r in forks} == {
        ("20", "linear"), ("20", "sqrt"), ("40", "linear"), ("40", "sqrt")
    }  # fmt: skip
    for run in forks:
        at = int(run.data.tags["fork_at"])
        assert run.info.status == "FINISHED"
        steps = [step for step, _ in lr_trace(client, run.info.run_id)]
        assert steps == list(range(at, at + 8))

    by_path = run_cli(
        ["hydra.run.dir=by_path", "fork=cooldown", "fork.from=trunk/checkpoints/step-20.ckpt",
         "fork.frac=0.5", *quiet],
        cwd=tmp_path,
    )  # fmt: skip
    assert by_path.returncode == 0, by_path.stderr[-2000:]
    (run,) = [r for r in client.search_runs([trunk_run.info.experiment_id])
              if r.data.tags.get("fork_checkpoint", "").endswith("step-20.ckpt")
              and r.data.tags.get("fork_length") == "10"]  # fmt: skip
    assert run.data.tags["fork_of"] == trunk_id  # read from the checkpoint
    assert [step for step, _ in lr_trace(client, run.info.run_id)] == list(range(20, 30))
