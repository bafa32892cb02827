"""The LR finder (``tune=lr_find``, ``optimizer.lr=auto``): real Trainer and MLflow SQLite."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from conftest import CONF
from lrexp.errors import ConfigError
from lrexp.lr_find.cli import tune
from lrexp.lr_find.search import find_lr, resolve_auto_lr
from lrexp.lr_find.settings import settings

#: small and fast: 40 steps of the 40-batch digits epoch, from 1e-4 to 10
SEARCH = ("tune.num_training=40", "tune.min_lr=1e-4", "tune.max_lr=10.0")


def tune_override() -> str:
    """``tune=lr_find`` once conf/config.yaml lists ``tune: null``, else ``+tune=lr_find``."""
    config = OmegaConf.load(CONF / "config.yaml")
    assert isinstance(config, DictConfig)
    defaults = config.get("defaults", [])
    listed = any(isinstance(item, DictConfig) and "tune" in item for item in defaults)
    return "tune=lr_find" if listed else "+tune=lr_find"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: creating (migrating) a store costs seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture
def finder_cfg(make_cfg: Callable[..., DictConfig], tracking_uri: str) -> Callable[..., DictConfig]:
    def make(*overrides: str) -> DictConfig:
        return make_cfg(tune_override(), *SEARCH, f"logger.tracking_uri={tracking_uri}", *overrides)

    return make


def test_lr_find_logs_suggestion_plot_and_csv(
    finder_cfg: Callable[..., DictConfig], tracking_uri: str, tmp_path: Path
) -> None:
    cfg = finder_cfg()
    result = tune(cfg)
    suggestion = result.metrics["lr_find/suggestion"]
    assert math.isfinite(suggestion)
    assert 1e-4 <= suggestion <= 10.0
    assert result.run_id is not None
    assert 12 < result.global_step <= 40  # stopped early at most once the loss blew up

    client = MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "lr_find-sgd-mlp-digits-s0"
    assert run.data.tags["task"] == "lr_find"
    assert float(run.data.params["lr_find/suggestion"]) == suggestion
    assert run.data.params["tune.num_training"] == "40"
    assert run.data.metrics["lr_find/suggestion"] == pytest.approx(suggestion, rel=1e-12)
    assert "lr" not in run.data.metrics  # no search step reaches an LR trace

    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"lr_find.png", "lr_find.csv"} <= artifacts
    local = Path(client.download_artifacts(result.run_id, "", str(tmp_path / "dl")))
    assert (local / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (local / "lr_find.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.global_step
    lrs = [float(row["lr"]) for row in rows]
    assert lrs[0] == pytest.approx(1e-4) and lrs == sorted(lrs)
    assert suggestion in lrs
    assert not list((Path(cfg.paths.output_dir) / "lr_find").glob(".lr_find_*.ckpt"))


def test_auto_lr_is_deterministic_and_ignores_lr_and_schedule(
    finder_cfg: Callable[..., DictConfig], make_cfg: Callable[..., DictConfig]
) -> None:
    first = resolve_auto_lr(finder_cfg("optimizer.lr=auto"))
    again = find_lr(finder_cfg("optimizer.lr=0.5", "schedule=onecycle"))
    assert math.isfinite(first) and 1e-4 <= first <= 10.0
    assert again.suggestion == first
    assert len(again.lrs) == len(again.losses) == again.steps
    # without tune=lr_find, optimizer.lr=auto searches with the documented defaults
    assert settings(make_cfg("optimizer.lr=auto")) == settings(make_cfg(tune_override()))


def test_search_with_accumulation_has_one_point_per_optimizer_step(
    finder_cfg: Callable[..., DictConfig],
) -> None:
    """The finder counts optimizer steps: 40 of them over 2-batch windows, 40 distinct LRs."""
    result = find_lr(
        finder_cfg(
            "trainer.accumulate_grad_batches=2", "tune.max_lr=1.0", "tune.early_stop_threshold=null"
        )
    )
    assert result.steps == len(result.lrs) == len(result.losses) == 40
    assert len(set(result.lrs)) == 40
    assert result.lrs == sorted(result.lrs)


def test_non_finite_loss_ends_the_search(finder_cfg: Callable[..., DictConfig]) -> None:
    result = find_lr(
        finder_cfg("tune.max_lr=1e12", "tune.early_stop_threshold=null", "tune.num_training=60")
    )
    assert result.steps < 60
    assert not math.isfinite(result.losses[-1])
    assert math.isfinite(result.suggestion) and result.suggestion < 1e12


def test_train_after_uses_suggestion_as_onecycle_max_lr(
    finder_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    cfg = finder_cfg(
        "tune.train_after=true", "schedule=onecycle", "trainer.max_epochs=1", "optimizer.lr=auto"
    )
    result = tune(cfg)
    assert result.run_id is not None
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("lrexp")
    assert experiment is not None
    (finder,) = client.search_runs(
        [experiment.experiment_id],
        "attributes.run_name = 'lr_find-sgd-mlp-digits-s0' and params.`tune.train_after` = 'True'",
    )
    suggestion = finder.data.metrics["lr_find/suggestion"]
    trained = client.get_run(result.run_id)
    assert trained.info.run_name == "onecycle-sgd-mlp-digits-s0"
    assert float(trained.data.params["optimizer.lr"]) == suggestion
    trace = sorted(client.get_metric_history(result.run_id, "lr"), key=lambda m: m.step)
    assert [m.step for m in trace] == list(range(40))  # the run's own steps only
    assert max(m.value for m in trace) == pytest.approx(suggestion, rel=1e-9)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("tune.min_lr=0", "tune.min_lr"),
        ("tune.max_lr=1e-5", "tune.max_lr"),
        ("tune.mode=cosine", "tune.mode"),
        ("tune.num_training=5", "tune.num_training"),
        ("tune.early_stop_threshold=0.5", "tune.early_stop_threshold"),
        ("+tune.patience=3", "tune.patience"),
    ],
)
def test_invalid_settings_name_the_key(
    finder_cfg: Callable[..., DictConfig], override: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: "):
        settings(finder_cfg(override))
