"""Bad input and faults: one clear line, the right exit code and run status, no lost points."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import CONF, experiment_id, run_cli
from lrexp.config.preflight import check_overrides
from lrexp.config.training import train_config
from lrexp.config.validate import check_devices
from lrexp.errors import ConfigError
from lrexp.run.resume import read_checkpoint
from lrexp.tracking.store import TrackedRun, TrackingUnavailableError, redact

BAD_OVERRIDES = [
    (["schedule=nosuch"], "schedule: no option 'nosuch'"),
    (["-m", "schedule=step,nosuch"], "schedule: no option 'nosuch'"),
    (["optimizer.nosuch=1"], "optimizer.nosuch: no such key; optimizer has _target_, dampening"),
    (["optimizer=adam", "optimizer.momentum=0.9"], "optimizer.momentum: no such key; optim"),
    (["schedule.warmup.nosuch=2"], "schedule.warmup.nosuch: no such key; schedule.warmup has"),
    (["schedule.warmup=3"], "schedule.warmup: must be a mapping of steps, frac"),
    (["optimizer.lr.x=1"], "optimizer.lr.x: no such key; optimizer.lr is a value, not a mapping"),
    (["optimizer.a=1", "schedule.b=2"], "optimizer.a: no such key; prefix with + to add a new key"),
    (["schedule.name=[1,2]"], "schedule.name: must be one of adaptive_step"),
    (
        ["optimizer._target_=torch.optim.Nope"],
        "optimizer._target_: cannot import 'torch.optim.Nope': module 'torch.optim' has no "
        "attribute 'Nope'",
    ),
    (["optimizer._target_=torch.nn.Linear"], "optimizer._target_: torch.nn.Linear is not a torch"),
    (["dataset.name=[1,2]"], "dataset.name: must be one of digits"),
    (["model._target_=mypkg.Net"], "model._target_: cannot import 'mypkg.Net': No module named"),
    (["model._target_=torch.nn.Linear"], "model.dropout: Linear takes no argument 'dropout'"),
    (["+model.widths=[8]"], "model.widths: MLP takes no argument 'widths'; it takes dropout, "),
    (["dataset._target_=torch.nn.Linear"], "dataset.batch_size: Linear takes no argument"),
    (["schedule=piecewise_constant", "schedule.values=abc"], "schedule.values: must be a list"),
    (["schedule=multistep", "schedule.milestones=3"], "schedule.milestones: must be a list"),
    (["trainer.devices=1e30"], "trainer.devices: must be a count >= 1"),
    (["trainer.devices=abc"], "trainer.devices: must be a count >= 1"),
    (["+trainer.max_step=5"], "trainer.max_step: Trainer takes no argument 'max_step'; it takes"),
    (["trainer.max_epochs=0"], "trainer.max_epochs: must be -1 or an integer >= 1, got 0"),
    (["resume=abc"], "resume: must be null or auto, got 'abc'"),
    (["threads=0"], "threads: must be an integer >= 1, got 0"),
    (["optimizer.lr=abc"], "optimizer.lr: must be a number > 0"),
    (["optimizer.lr=0"], "optimizer.lr: must be a number > 0"),
    (["optimizer.lr=-0.1"], "optimizer.lr: must be a number > 0"),
    (["schedule=step", "schedule.gamma=0"], "schedule.gamma: must be > 0"),
    (["schedule=exponential", "schedule.gamma=-1"], "schedule.gamma: must be > 0"),
    (["schedule=step", "schedule.unit=step", "schedule.step_size=0"], "schedule.step_size"),
    (["schedule=multistep", "schedule.milestones=[5,3]"], "schedule.milestones: must be strictly"),
    (["schedule.warmup.steps=10000"], "schedule.warmup.steps: warmup of 10000 steps"),
    (["schedule=onecycle", "schedule.pct_start=1.5"], "schedule.pct_start: must be in (0, 1)"),
    (["schedule=cosine", "schedule.min_factor=2"], "schedule.min_factor: must be in [0, 1]"),
    (["dataset.batch_size=0"], "dataset.batch_size: must be an integer >= 1"),
    (["trainer=gpu", "trainer.devices=64"], "trainer.devices: asks for 64 GPUs"),
    (["schedule=plateau", "schedule.monitor=val/f1"], "schedule.monitor: must be a metric"),
    (["schedule=onecycle", "optimizer=adagrad"], "schedule.cycle_momentum"),
    (["seed=abc"], "seed: Value 'abc' of type 'str' could not be converted to Integer"),
    (["seed=-1"], "seed: must be an integer >= 0, got -1"),
    (["threads=1.5"], "threads: Value '1.5' of type 'float' could not be converted to Integer"),
    (["logger.retry_seconds=soon"], "logger.retry_seconds: Value 'soon' of type 'str' could not"),
    (["logger.retry_seconds=-1"], "logger.retry_seconds: must be a number >= 0, got -1.0"),
    (["-m", "seed=0,1,abc"], "seed: Value 'abc' of type 'str' could not be converted to Integer"),
    (["-m", "compile=false,maybe"], "compile: Value 'maybe' is not a valid bool"),
    (["optimizer=sf_adamw", "schedule=cosine"], "schedule.name: sf_adamw is schedule-free"),
    (["model=nosuch"], "model: no option 'nosuch'"),
    (["model=cnn", "dataset=mnist1d", "model.channels_last=true"], "model.channels_last: needs"),
    (["compile=maybe"], "compile: Value 'maybe' is not a valid bool (type str)"),
    (["trainer=ddp_cpu", "dataset.batch_size=4"], "dataset.batch_size: 4 leaves a training batch"),
    (["trainer=ddp_cpu", "dataset.batch_size=1"], "dataset.batch_size: 1 leaves a training batch"),
    # found by building the model on the data's shape and the optimizer on its parameters
    (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas: Invalid beta parameter"),
    (["model=lstm", "model.chunk=0"], "model.chunk: chunk must be an integer >= 1, got 0"),
    (["model=mlp", "model.norm=group"], "model.norm: norm must be one of none, batch, layer"),
    (["optimizer.lr=inf"], "optimizer.lr: must be a finite number, got inf"),
    (["optimizer=adam", "optimizer.eps=nan"], "optimizer.eps: must be a finite number, got nan"),
    (["schedule=cosine", "schedule.min_factor=-inf"], "schedule.min_factor: must be a finite"),
    # kept checkpoints and forks (the trunk-dependent errors: tests/test_fork.py)
    (["callbacks.checkpoint.keep_steps=[99999]"], "checkpoint.keep_steps: must hold steps"),
    (["callbacks.checkpoint.keep_steps=5"], "callbacks.checkpoint.keep_steps: Invalid value"),
    (["callbacks.checkpoint.keep_steps=[1,x]"], "callbacks.checkpoint.keep_steps[1]: Value 'x'"),
    (["callbacks.checkpoint.keep_every_n_steps=0"], "keep_every_n_steps: must be an integer >= 1"),
    (["fork=cooldown"], "fork.from: set the trunk's MLflow run id or a kept checkpoint path"),
    (["fork=cooldown", "fork.from=/nope.ckpt"], "fork.from: '/nope.ckpt' is no checkpoint file"),
    (["fork=cooldown", "fork.from=x", "fork.at=0"], "fork.at: must be a kept step >= 1, got 0"),
    (["fork=cooldown", "+fork.until=3"], "fork.until: unknown key; allowed: from, at, length"),
    (["schedule=cooldown", "schedule.trunk.name=plateau"], "schedule.trunk.name: must be a closed"),
    (["schedule=wsd", "schedule.decay_shape=exp"], "schedule.min_factor: must be > 0 for an exp"),
    # MLflow 3 would fail only after the first step ("file store ... maintenance mode")
    (
        ["logger.tracking_uri=mlruns/mlflow.db"],
        "logger.tracking_uri: 'mlruns/mlflow.db' has no scheme, so MLflow 3 would take it for its "
        "retired file store; for a SQLite store write sqlite:///mlruns/mlflow.db (a server: "
        "http://host:port)",
    ),
    (["logger.tracking_uri=mlruns"], "for a SQLite store write sqlite:///mlruns/mlflow.db"),
    (
        ["logger.tracking_uri=file:///tmp/store"],
        "logger.tracking_uri: 'file:///tmp/store' names MLflow's retired file store; for a "
        "SQLite store write sqlite:////tmp/store/mlflow.db",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_OVERRIDES, ids=[" ".join(a) for a, _ in BAD_OVERRIDES]
)
def test_bad_overrides_are_named_before_anything_runs(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_overrides(CONF, args)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("devices", [1, 2, -1, "auto", "2", "0,1", [0], [0, 1]])
def test_every_lightning_devices_form_is_accepted(devices: Any) -> None:
    check_devices(devices)


@pytest.mark.parametrize(
    "args",
    [
        ["schedule=nosuch"],
        ["optimizer.lr=abc"],
        ["schedule.warmup.steps=900"],
        ["logger.tracking_uri=mlruns/mlflow.db"],
    ],
)
def test_cli_rejects_with_one_line_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrexp: error: "), result.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "outputs").exists()


def test_divergence_stops_within_one_step_and_is_tagged(tmp_path: Path) -> None:
    result = run_cli(["optimizer.lr=1e6", "trainer.enable_progress_bar=false"], cwd=tmp_path)
    assert result.returncode == 3
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("lrexp:")]
    assert len(error_lines) == 1 and "diverged: loss is nan at step" in error_lines[0]
    assert "(lr 1e+06)" in error_lines[0] or "lr 999" in error_lines[0]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (run,) = client.search_runs([experiment_id(client, "lrexp")])
    assert run.info.status == "FAILED" and run.data.tags["diverged"] == "true"
    step = int(error_lines[0].split("at step ")[1].split()[0])
    lr_steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "lr"))
    assert lr_steps == list(range(step))  # the diverging step made no update


class Crash(pl.Callback):
    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step == 45:
            raise RuntimeError("simulated crash")


def test_exception_marks_run_failed_after_flushing(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    cfg = make_cfg(f"logger.tracking_uri={tracking_uri}", "trainer.max_epochs=3")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_config(cfg, callbacks=[Crash()])
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([experiment_id(client, "lrexp")])
    assert run.info.status == "FAILED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "lr")) == list(
        range(45)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_fails_fast_with_one_line() -> None:
    start = time.monotonic()
    with pytest.raises(TrackingUnavailableError) as caught:
        TrackedRun(f"http://127.0.0.1:{free_port()}", "lrexp", "x", {})
    assert time.monotonic() - start < 10
    assert "cannot reach the MLflow tracking server" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_fallback_to_local_store_logs_no_environment_or_credentials(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LREXP_TEST_TOKEN", "env-token-4711")
    cfg = make_cfg(
        f"logger.tracking_uri=http://alice:s3cret@127.0.0.1:{free_port()}",
        "logger.fallback_to_local=true",
        "trainer.max_steps=3",
    )
    result = train_config(cfg)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = client.get_run(str(result.run_id))
    assert run.info.status == "FINISHED"
    logged = {**run.data.params, **run.data.tags}
    assert logged["logger.tracking_uri"].startswith("http://alice:***@127.0.0.1:")
    for key, value in logged.items():
        assert "s3cret" not in value and "env-token-4711" not in value, key
        assert "LREXP_TEST_TOKEN" not in key, key


UNSAFE_CHECKPOINTS = {
    "pickled code": lambda path: torch.save({"state_dict": {}, "x": argparse.Namespace()}, path),
    "not a checkpoint": lambda path: path.write_bytes(b"not a checkpoint at all"),
}


@pytest.mark.parametrize("kind", list(UNSAFE_CHECKPOINTS))
def test_unsafe_or_foreign_checkpoint_is_named(tmp_path: Path, kind: str) -> None:
    checkpoint = tmp_path / "given.ckpt"
    UNSAFE_CHECKPOINTS[kind](checkpoint)
    with pytest.raises(ConfigError) as caught:
        read_checkpoint(checkpoint)
    message = str(caught.value)
    assert message.startswith(f"ckpt_path: {checkpoint} is not a checkpoint lrexp loads safely")
    assert "Unsupported " in message and "\n" not in message


def test_cli_refuses_a_checkpoint_with_pickled_code_in_one_line(tmp_path: Path) -> None:
    checkpoint = tmp_path / "given.ckpt"
    UNSAFE_CHECKPOINTS["pickled code"](checkpoint)
    result = run_cli([f"ckpt_path={checkpoint}", "trainer.max_steps=3"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"lrexp: error: ckpt_path: {checkpoint} is not a checkpoint lrexp loads safely "
        "(weights_only): Unsupported global: GLOBAL argparse.Namespace"
    ], result.stderr[-2000:]
    assert not (tmp_path / "mlruns").exists()


def test_credentials_are_redacted() -> None:
    assert (
        redact("https://alice:s3cret@mlflow.example:443/")
        == "https://alice:***@mlflow.example:443/"
    )
    assert redact("postgresql://bob:pw@db/mlflow") == "postgresql://bob:***@db/mlflow"
    assert redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


WRITER = """
import sys
from lrexp.tracking.logger import BufferedMlflowLogger
from lrexp.tracking.store import TrackedRun
uri, name, experiment = sys.argv[1], sys.argv[2], sys.argv[3]
logger = BufferedMlflowLogger(TrackedRun(uri, experiment, name, {}))
for step in range(3000):
    logger.log_metrics({"lr": step * 1e-4}, step=step)
    if step % 250 == 0:
        logger.flush()
logger.finalize("success")
logger.run.end("FINISHED")
"""


@pytest.mark.slow
def test_four_concurrent_writers_lose_no_points(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/store.db"
    TrackedRun(uri, "concurrent", "create-the-store-first", {})
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, f"job{i}", "concurrent"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr[-2000:]
    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id(client, "concurrent")])
    jobs = [r for r in runs if r.info.run_name.startswith("job")]
    assert len(jobs) == 4
    for run in jobs:
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "lr")) == list(
            range(3000)
        )


@pytest.mark.slow
def test_sigkilled_run_is_marked_killed_when_compared(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(CONF.parent / "train.py"),
            "trainer.max_epochs=200",
            "trainer.enable_progress_bar=false",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = tmp_path / "mlruns" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{database}")

    def run_started() -> bool:
        experiment = client.get_experiment_by_name("lrexp") if database.exists() else None
        return bool(experiment and client.search_runs([experiment.experiment_id]))

    deadline = time.monotonic() + 240
    while not run_started() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    process.kill()
    process.wait(timeout=60)
    (run,) = client.search_runs([experiment_id(client, "lrexp")])
    assert run.info.status == "RUNNING"
    from lrexp.compare import compare

    compare(f"sqlite:///{database}", experiment="lrexp", out_dir=tmp_path / "cmp")
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    assert "KILLED" in (tmp_path / "cmp" / "summary.md").read_text()
