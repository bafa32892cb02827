"""Preemption and exact resume, with real Trainers, real processes and a real MLflow store."""

from __future__ import annotations

import math
import signal
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

from conftest import ROOT, experiment_id, history_file_of
from lrexp.config.training import train_config

STEPS_PER_EPOCH = 40  # digits: 1257 training examples in batches of 32


class InterruptAt(pl.Callback):
    """Raises KeyboardInterrupt (what SIGINT does) before the given optimizer step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step == self.step and not trainer.fit_loop.restarting:
            raise KeyboardInterrupt


def lr_trace(client: MlflowClient, run_id: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, "lr"))


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


CASES = {
    "cosine": ["schedule=cosine"],
    "onecycle": ["schedule=onecycle"],
    "plateau": [
        "schedule=plateau",
        "schedule.patience=0",
        "schedule.monitor=val/acc",
        "schedule.mode=max",
    ],
    "bold_driver": ["schedule=bold_driver"],
    "cosine+accumulate": ["schedule=cosine", "trainer.accumulate_grad_batches=3"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, tracking_uri: str, case: str
) -> None:
    common = [
        *CASES[case],
        "trainer.max_epochs=4",
        "trainer.deterministic=true",
        f"logger.tracking_uri={tracking_uri}",
    ]
    reference = train_config(make_cfg(*common, f"paths.output_dir={tmp_path}/reference"))

    resumed_dir = tmp_path / "resumed"
    cfg = make_cfg(*common, f"paths.output_dir={resumed_dir}")
    stop = 57 if "accumulate" not in case else 23  # mid-epoch in both cases
    with pytest.raises(SystemExit):
        train_config(cfg, callbacks=[InterruptAt(stop)])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores SIGINT after
    last = resumed_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == stop

    client = MlflowClient(tracking_uri)
    killed = client.get_run(checkpoint["lrexp_run_id"])
    assert killed.info.status == "KILLED"
    assert [s for s, _ in lr_trace(client, killed.info.run_id)] == list(range(stop))
    token, stored = history_file_of(client, killed.info.run_id, tmp_path / "file-killed")
    assert stored["lr"] == lr_trace(client, killed.info.run_id)

    result = train_config(make_cfg(*common, f"paths.output_dir={resumed_dir}", f"ckpt_path={last}"))
    assert result.run_id == killed.info.run_id, "resuming must continue the same MLflow run"
    run_id = killed.info.run_id
    assert client.get_run(run_id).info.status == "FINISHED"

    expected = lr_trace(client, str(reference.run_id))
    observed = lr_trace(client, run_id)
    assert [s for s, _ in observed] == [s for s, _ in expected]  # no duplicate, no gap
    assert observed == expected  # bitwise equal values
    new_token, stored = history_file_of(client, run_id, tmp_path / "file-resumed")
    assert new_token != token and stored["lr"] == observed  # rewritten with every point
    ref_weights = weights(tmp_path / "reference" / "checkpoints" / "last.ckpt")
    new_weights = weights(last)
    assert ref_weights.keys() == new_weights.keys()
    for key in ref_weights:
        assert torch.equal(ref_weights[key], new_weights[key]), key
    final = client.get_run(run_id).data.metrics
    expected_final = client.get_run(str(reference.run_id)).data.metrics
    for key in ("train/loss", "train/acc", "val/acc", "val/loss", "test/acc", "test/loss"):
        assert final[key] == expected_final[key], key
    for key in ("val/acc", "train/loss"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        reference_history = client.get_metric_history(str(reference.run_id), key)
        assert history == sorted((m.step, m.value) for m in reference_history), key


def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_checkpoints_marks_killed_and_resumes_the_same_run(tmp_path: Path) -> None:
    epochs = 15
    args = [
        str(ROOT / "train.py"),
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        "hydra.run.dir=outputs/preempted",
    ]
    checkpoints = tmp_path / "outputs" / "preempted" / "checkpoints"
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any(checkpoints.glob("best*.ckpt")), timeout=240)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-2000:]
    assert "lrexp: stopped by SIGTERM; resume with: ckpt_path=" in stderr
    assert "Traceback" not in stderr

    last = checkpoints / "last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 0 < step < epochs * STEPS_PER_EPOCH
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (run,) = client.search_runs([experiment_id(client, "lrexp")])
    assert run.info.status == "KILLED"
    assert [s for s, _ in lr_trace(client, run.info.run_id)] == list(range(step))

    resumed = subprocess.run(
        [sys.executable, *args, "resume=auto"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = client.search_runs([experiment_id(client, "lrexp")])
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    assert runs[0].info.status == "FINISHED"
    total = epochs * STEPS_PER_EPOCH
    trace = lr_trace(client, run.info.run_id)
    assert [s for s, _ in trace] == list(range(total))
    for s, value in trace:
        assert value == pytest.approx(
            0.1 * (1 + math.cos(math.pi * s / total)) / 2, rel=1e-12, abs=1e-15
        )
