"""The team setup end to end: a real ``mlflow server`` on PostgreSQL taking a parallel sweep,
concurrent writers and a SIGTERMed run, as it does with a local SQLite store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow.tracking import MlflowClient
from test_errors import WRITER  # one writer script: 3000 lr points, flushed every 250

from conftest import ROOT, run_cli
from lrexp.tracking.localserver import MlflowServer

STEPS_PER_EPOCH = 40  # digits: 1257 training examples in batches of 32
RUN_ARTIFACTS = {
    *("resolved_config.yaml", "planned_lr.csv", "lr_plan.png", "learning_curves.png"),
    "metric_history.npz",
}


def steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def experiment_runs(client: MlflowClient, name: str) -> list[Any]:
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, name
    return client.search_runs([experiment.experiment_id])


@pytest.mark.slow
def test_parallel_2x2_sweep_one_parent_four_children(
    pg_server: MlflowServer, tmp_path: Path
) -> None:
    result = run_cli(
        [
            "-m",
            "hydra/launcher=parallel",
            "schedule=step,cosine",
            "seed=0,1",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            f"logger.tracking_uri={pg_server.url}",
            "logger.experiment_name=team-sweep",
            "hydra.sweep.dir=multirun/team",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(pg_server.url)
    runs = experiment_runs(client, "team-sweep")
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("sweep") != "parent"]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "summary.csv",
        "comparison.png",
    }
    combos = set()
    for child in children:
        run_id = child.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        combos.add((child.data.params["schedule.name"], child.data.params["seed"]))
        assert steps(client, run_id, "lr") == list(range(STEPS_PER_EPOCH))  # each point once
        assert steps(client, run_id, "val/acc") == [STEPS_PER_EPOCH]
        assert len(client.get_metric_history(run_id, "test/acc")) == 1
        assert 0.5 < child.data.metrics["test/acc"] <= 1
        assert {a.path for a in client.list_artifacts(run_id)} >= RUN_ARTIFACTS
    assert combos == {("step", "0"), ("step", "1"), ("cosine", "0"), ("cosine", "1")}


@pytest.mark.slow
def test_four_concurrent_writers_lose_and_duplicate_nothing(
    pg_server: MlflowServer, tmp_path: Path
) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, pg_server.url, f"job{i}", "team-load"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for i in range(4)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr[-2000:]
    client = MlflowClient(pg_server.url)
    runs = experiment_runs(client, "team-load")
    assert sorted(r.info.run_name for r in runs) == ["job0", "job1", "job2", "job3"]
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "lr")
        assert sorted((m.step, m.value) for m in history) == [
            (step, step * 1e-4) for step in range(3000)
        ]
    assert not (tmp_path / "unsent").exists()


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_with_its_points(
    pg_server: MlflowServer, tmp_path: Path
) -> None:
    epochs = 15
    checkpoints = tmp_path / "outputs" / "preempted" / "checkpoints"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=false",
            "hydra.run.dir=outputs/preempted",
            f"logger.tracking_uri={pg_server.url}",
            "logger.experiment_name=team-sigterm",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not any(checkpoints.glob("best*.ckpt")):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr
    step = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)[
        "global_step"
    ]
    assert 0 < step < epochs * STEPS_PER_EPOCH
    client = MlflowClient(pg_server.url)
    (run,) = experiment_runs(client, "team-sigterm")
    assert run.info.status == "KILLED"
    assert steps(client, run.info.run_id, "lr") == list(range(step))
    assert run.data.tags["checkpoint"].endswith("last.ckpt")
