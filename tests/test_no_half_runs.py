"""Nothing half-done on bad input: config, data and store errors are one line (exit 2) and
leave no run in the store; a run that ends mid-epoch is still validated at its end."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import run_cli, tmp_overrides
from lrexp.config.training import train_config
from lrexp.errors import ConfigError, DataUnavailableError


def run_count(database: Path) -> int:
    """Runs in an MLflow SQLite store (0 when the store was never created)."""
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        return int(connection.execute("select count(*) from runs").fetchone()[0])


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas: Invalid beta"),
        (["model=lstm", "model.chunk=0"], "model.chunk: chunk must be an integer >= 1"),
        (["optimizer.lr=inf"], "optimizer.lr: must be a finite number, got inf"),
    ],
    ids=["betas", "lstm-chunk", "lr-inf"],
)
def test_bad_model_or_optimizer_values_stop_the_cli_before_any_run(
    tmp_path: Path, overrides: list[str], line: str
) -> None:
    database = tmp_path / "mlruns" / "mlflow.db"
    # a store that already holds a run: the bad command must add none
    MlflowClient(f"sqlite:///{database}").create_experiment("warm")
    args = [*tmp_overrides(tmp_path), f"logger.tracking_uri=sqlite:///{database}", *overrides]
    done = run_cli(args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"lrexp: error: {line}" or done.stderr.strip().startswith(
        f"lrexp: error: {line}"
    )
    assert len(done.stderr.strip().splitlines()) == 1
    assert run_count(database) == 0
    assert not (tmp_path / "out").exists()  # Hydra never started


def test_unloadable_dataset_fails_before_a_run_is_opened(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, tracking_uri: str
) -> None:
    with pytest.raises(DataUnavailableError, match="mnist"):
        train_config(make_cfg("dataset=mnist", f"logger.tracking_uri={tracking_uri}"))
    assert run_count(tmp_path / "mlruns" / "mlflow.db") == 0


def test_unusable_store_is_one_line_naming_the_key(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("not sqlite\n")
    with pytest.raises(ConfigError, match=r"^logger\.tracking_uri: .*notes\.db is not a SQLite"):
        train_config(make_cfg(f"logger.tracking_uri=sqlite:///{not_a_database}"))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match=r"^logger\.tracking_uri: .*a_file is not a directory"):
        train_config(make_cfg(f"logger.tracking_uri=sqlite:///{a_file}/sub/mlflow.db"))


def test_uncreatable_store_through_the_cli(tmp_path: Path) -> None:
    """MLflow cannot create a folder under /proc: one line, exit 2, no traceback."""
    done = run_cli(
        [
            *tmp_overrides(tmp_path),
            "logger.tracking_uri=sqlite:////proc/nope/x.db",
            "trainer.max_steps=2",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        "lrexp: error: logger.tracking_uri: cannot open sqlite:////proc/nope/x.db"
    )
    assert "No such file or directory" in line
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr


def val_steps(tracking_uri: str, run_id: str | None) -> list[int]:
    history = MlflowClient(tracking_uri).get_metric_history(str(run_id), "val/acc")
    return sorted(m.step for m in history)


@pytest.mark.parametrize(
    ("overrides", "steps"),
    [
        (["trainer.max_steps=20"], [20]),  # mid-epoch (40 batches per epoch)
        (["trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"], [80, 120]),
        (["trainer.max_epochs=2"], [40, 80]),  # already validated at the end: not twice
    ],
    ids=["max_steps-mid-epoch", "last-epoch-not-a-val-epoch", "epoch-end"],
)
def test_a_run_is_validated_once_at_its_end(
    make_cfg: Callable[..., DictConfig],
    tracking_uri: str,
    overrides: list[str],
    steps: list[int],
) -> None:
    result = train_config(make_cfg(f"logger.tracking_uri={tracking_uri}", *overrides))
    assert val_steps(tracking_uri, result.run_id) == steps
    assert "val/acc" in result.metrics  # the sweepers' objective
    best = sorted((result.output_dir / "checkpoints").glob("best-step*.ckpt"))
    assert best, "no best checkpoint"
    assert result.global_step == steps[-1]
