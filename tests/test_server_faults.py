"""A real PostgreSQL-backed ``mlflow server`` that goes away while a run trains.

The server is SIGKILLed from inside the run (a callback at a given optimizer step), so the
outage always falls mid-training, whatever the machine's speed. The run must keep training,
retry, spill to ``<output dir>/unsent/`` after ``logger.retry_seconds``, and deliver every
point exactly once when the server is back, or via ``lrexp-sync`` when it never comes back.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import history_file_of
from lrexp.config.training import train_config
from lrexp.tracking.localserver import MlflowServer
from lrexp.tracking.spill import SpillFile

STEPS_PER_EPOCH = 40  # digits: 1257 training examples in batches of 32
KEYS = ("lr", "train/loss", "val/acc", "val/loss", "test/acc")
PACE = 0.25  # seconds added to each step while the server is away
FIGURES = {"resolved_config.yaml", "planned_lr.csv", "lr_plan.png", "learning_curves.png"}


class Outage(pl.Callback):
    """Kills ``server`` before optimizer step ``kill_at``; with ``back_after`` it starts it
    again (same port, same database) that many seconds later. Meanwhile steps are paced
    (:data:`PACE` s each) so that the run keeps training and logging through the outage on a
    fast machine too, and training waits before step ``hold_at`` until the server answers,
    so that it returns while the run still trains."""

    def __init__(
        self, server: MlflowServer, kill_at: int, back_after: float | None, hold_at: int
    ) -> None:
        self.server = server
        self.kill_at = kill_at
        self.back_after = back_after
        self.hold_at = hold_at
        self.back = threading.Event()
        self.step_when_restarting: int | None = None
        self.step = 0
        self.killed = False
        self.killed_ms = self.back_ms = 0  # when the server went and came back

    def restart(self) -> None:
        assert self.back_after is not None
        time.sleep(self.back_after)
        self.step_when_restarting = self.step
        self.server.start()
        self.back_ms = int(time.time() * 1000)
        self.back.set()

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        self.step = trainer.global_step
        if self.step == self.kill_at and not self.killed:
            self.killed = True
            self.killed_ms = int(time.time() * 1000)
            self.server.kill()
            if self.back_after is not None:
                threading.Thread(target=self.restart, daemon=True).start()
        if self.killed and self.back_after is not None and not self.back.is_set():
            time.sleep(PACE)
        if self.step == self.hold_at and self.back_after is not None:
            assert self.back.wait(timeout=300), "the server did not come back"


def server_cfg(make_cfg: Callable[..., DictConfig], server: MlflowServer, *extra: str) -> Any:
    return make_cfg(
        f"logger.tracking_uri={server.url}",
        "logger.experiment_name=faults",
        *extra,
    )


def check_run(client: MlflowClient, run_id: str, steps: int, tmp: Path) -> None:
    """FINISHED, every key's points once each, ``lr`` at 0..steps-1, every artifact there."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for key in KEYS:
        history = client.get_metric_history(run_id, key)
        assert history, key
        assert len({m.step for m in history}) == len(history), f"{key}: a point twice"
    assert sorted(m.step for m in client.get_metric_history(run_id, "lr")) == list(range(steps))
    val_steps = sorted(m.step for m in client.get_metric_history(run_id, "val/acc"))
    assert val_steps == list(range(STEPS_PER_EPOCH, steps + 1, STEPS_PER_EPOCH))
    assert {a.path for a in client.list_artifacts(run_id)} >= FIGURES
    local = client.download_artifacts(run_id, "resolved_config.yaml", str(tmp))
    assert "retry_seconds" in Path(local).read_text()
    _, stored = history_file_of(client, run_id, tmp / "history")  # written once all was sent
    for key in ("lr", "val/acc"):
        history = client.get_metric_history(run_id, key)
        ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
        assert stored[key] == [(m.step, m.value) for m in ordered], key


@pytest.mark.slow
def test_server_away_20s_mid_run_loses_nothing(
    new_server: Callable[..., MlflowServer],
    make_cfg: Callable[..., DictConfig],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = new_server()
    epochs = 5
    cfg = server_cfg(
        make_cfg,
        server,
        f"trainer.max_epochs={epochs}",
        "logger.retry_seconds=3",
        "logger.system_metrics_interval=1",
    )
    outage = Outage(server, kill_at=45, back_after=20, hold_at=epochs * STEPS_PER_EPOCH - 10)
    start = time.monotonic()
    result = train_config(cfg, callbacks=[outage])
    stderr = capfd.readouterr().err
    total = epochs * STEPS_PER_EPOCH
    assert result.global_step == total
    assert outage.back.is_set()
    # training went on while the server was down: past the next epoch's flush at least
    assert outage.step_when_restarting is not None
    assert outage.step_when_restarting >= 2 * STEPS_PER_EPOCH, outage.step_when_restarting
    assert "has not taken points for" in stderr, stderr[-3000:]
    assert "answers again" in stderr
    assert "lrexp-sync" not in stderr
    assert "Traceback" not in stderr
    spill = SpillFile(Path(cfg.paths.output_dir))
    assert spill.exists() and not spill.pending()  # spilled, then all of it sent
    assert result.run_id is not None
    client = MlflowClient(server.url)
    check_run(client, result.run_id, total, tmp_path / "dl")
    # system metrics go through the same outbox: the samples taken while it was away arrive too
    samples = client.get_metric_history(result.run_id, "system/cpu_utilization_percentage")
    assert sorted(m.step for m in samples) == list(range(len(samples))), "a sample lost or twice"
    during = [m for m in samples if outage.killed_ms < m.timestamp < outage.back_ms]
    assert len(during) >= 10, (len(during), len(samples))
    assert time.monotonic() - start < 240


def sync(output_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lrexp.tracking.sync", str(output_dir)],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_server_never_back_then_lrexp_sync_twice(
    new_server: Callable[..., MlflowServer],
    make_cfg: Callable[..., DictConfig],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = new_server()
    epochs = 3
    cfg = server_cfg(make_cfg, server, f"trainer.max_epochs={epochs}", "logger.retry_seconds=2")
    outage = Outage(server, kill_at=45, back_after=None, hold_at=-1)
    result = train_config(cfg, callbacks=[outage])
    stderr = capfd.readouterr().err
    total = epochs * STEPS_PER_EPOCH
    output_dir = Path(cfg.paths.output_dir)
    assert result.global_step == total
    assert any((output_dir / "checkpoints").glob("best-step*.ckpt"))
    hint = [line for line in stderr.splitlines() if "lrexp-sync" in line]
    assert hint and len(hint) == 1, stderr[-3000:]
    assert hint[0].endswith(f"upload them with: lrexp-sync {output_dir}")
    assert "Traceback" not in stderr
    spill = SpillFile(output_dir)
    assert spill.pending()
    records = [record["kind"] for _, record in spill.unsent()]
    assert records[-1] == "close" and "metrics" in records

    down = sync(output_dir)  # still no server: nothing is lost, the file stays
    assert down.returncode == 1 and "run lrexp-sync again later" in down.stderr, down.stderr
    assert spill.pending()

    server.start()
    first = sync(output_dir)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "run ended FINISHED" in first.stdout
    second = sync(output_dir)
    assert second.returncode == 0 and "nothing to send" in second.stdout, second.stdout
    client = MlflowClient(server.url)
    assert result.run_id is not None
    check_run(client, result.run_id, total, tmp_path / "dl")
    # even a lost "sent" marker duplicates nothing: the store ignores identical points
    spill.sent_path.unlink()
    third = sync(output_dir)
    assert third.returncode == 0, third.stderr[-2000:]
    check_run(client, result.run_id, total, tmp_path / "dl2")


def test_sweep_parent_with_the_server_away_at_the_end_is_one_line(
    new_server: Callable[..., MlflowServer],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A multirun whose server is gone when the sweep ends: no traceback, one line each for
    the comparison and the parent run, which names the command for later."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import CONF, tmp_overrides
    from lrexp.cli import SweepTracker

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)  # TrackedRun sets them; unset again after
    server = new_server()
    overrides = [*tmp_overrides(tmp_path), f"logger.tracking_uri={server.url}"]
    overrides.append(f"hydra.sweep.dir={tmp_path}/sweep")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    tracker = SweepTracker()
    tracker.on_multirun_start(cfg)
    parent = tracker.run.run_id
    server.kill()
    tracker.on_multirun_end(cfg)  # raises nothing
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("lrexp")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("lrexp: sweep comparison failed: "), lines[0]
    assert lines[1] == (
        f"lrexp: the tracking server at {server.url} is away; the sweep's parent run {parent} "
        f"stays RUNNING; once its jobs' points are sent (lrexp-sync {tmp_path}/sweep), compare "
        f"them with: lrexp-compare --tracking-uri {server.url} --parent {parent} --out <dir>"
    )
    server.start()
    assert MlflowClient(server.url).get_run(parent).info.status == "RUNNING"
