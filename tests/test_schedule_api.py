"""The public schedule API: the LR a plain loop and a user's LightningModule get, step by step,
equals the ``lr`` trace of an lrexp run with the same config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from mlflow import MlflowClient
from omegaconf import DictConfig
from plain_parts import plain_loop_lrs
from torch.utils.data import DataLoader, TensorDataset

from lrexp.config.training import train_config
from lrexp.errors import ConfigError
from lrexp.schedules import make_schedule, make_scheduler


@pytest.mark.parametrize(
    ("overrides", "family", "kwargs"),
    [
        (
            ["schedule=cosine", "schedule.min_factor=0.1", "schedule.warmup.steps=10"],
            "cosine",
            {"min_factor": 0.1, "warmup": 10},
        ),
        (
            [
                "schedule=step",
                "schedule.unit=epoch",
                "schedule.step_size=1",
                "schedule.gamma=0.5",
                "schedule.warmup.steps=0.5",
            ],
            "step",
            {"unit": "epoch", "steps_per_epoch": 40, "step_size": 1, "gamma": 0.5, "warmup": 0.5},
        ),
        (["schedule=wsd"], "wsd", {"decay_frac": 0.2, "warmup_frac": 0.05}),
    ],
    ids=["cosine-warmup", "step-epochs", "wsd"],
)
def test_plain_loop_lr_equals_the_lrexp_runs_trace(
    make_cfg: Callable[..., DictConfig],
    tracking_uri: str,
    overrides: list[str],
    family: str,
    kwargs: dict[str, Any],
) -> None:
    # digits at batch 32: 1257 training examples -> 40 steps per epoch; 2 epochs = 80 steps
    cfg = make_cfg(
        f"logger.tracking_uri={tracking_uri}",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "logger.system_metrics=false",
        *overrides,
    )
    result = train_config(cfg)
    history = MlflowClient(tracking_uri).get_metric_history(str(result.run_id), "lr")
    trace = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(trace) == 80
    total = 2 if kwargs.get("unit") == "epoch" else 80
    used = plain_loop_lrs(
        80,
        float(cfg.optimizer.lr),
        lambda optimizer: make_scheduler(optimizer, family, total=total, **kwargs),
    )
    assert used == pytest.approx(trace, rel=1e-12, abs=1e-15)
    schedule = make_schedule(family, total=total, **kwargs)
    assert [float(cfg.optimizer.lr) * schedule.lr_at(k) for k in range(80)] == pytest.approx(trace)


class TinyModule(pl.LightningModule):
    """A user's own LightningModule with lrexp's scheduler in automatic optimization."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 2)
        self.used: list[float] = []

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.used.append(optimizer.param_groups[0]["lr"])

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=0.01)
        scheduler = make_scheduler(optimizer, "linear", total=30, warmup=5)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def test_a_users_lightning_module_follows_the_schedule() -> None:
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    module = TinyModule()
    trainer = pl.Trainer(
        max_steps=30,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(data, batch_size=8))
    schedule = make_schedule("linear", total=30, warmup=5)
    assert module.used == pytest.approx([0.01 * schedule.lr_at(k) for k in range(30)])
    assert module.used[0] == pytest.approx(0.001) and module.used[-1] < module.used[5]


def test_bad_family_and_arguments_are_named() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.name: must be one of"):
        make_schedule("cosin", total=10)
    with pytest.raises(ConfigError, match=r"schedule\.gamma: unknown key for schedule cosine"):
        make_schedule("cosine", total=10, gamma=0.5)
    with pytest.raises(ConfigError, match=r"steps_per_epoch: unit='epoch' needs"):
        make_schedule("cosine", total=3, unit="epoch")
