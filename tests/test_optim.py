"""Optimizer factory: param groups, per-group LR logging, schedule-free optimizers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig
from torch import nn
from torch.nn.utils import parameters_to_vector

from lrexp.config.training import train_config
from lrexp.errors import ConfigError
from lrexp.optim import build_optimizer, scaled_lr


def test_weight_decay_spares_biases_and_norm_weights() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    optimizer = build_optimizer(
        net, {"_target_": "torch.optim.AdamW", "lr": 0.01, "weight_decay": 0.1}
    )
    decay, no_decay = optimizer.param_groups
    assert (decay["name"], decay["weight_decay"]) == ("decay", 0.1)
    assert (no_decay["name"], no_decay["weight_decay"]) == ("no_decay", 0.0)
    assert {p.ndim for p in decay["params"]} == {2} and {p.ndim for p in no_decay["params"]} == {1}
    everything = build_optimizer(
        net,
        {
            "_target_": "torch.optim.AdamW",
            "lr": 0.01,
            "weight_decay": 0.1,
            "decay_norm_and_bias": True,
        },
    )
    assert len(everything.param_groups) == 1


def test_groups_with_one_lr_are_logged_as_lr(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    """AdamW's decay and no-decay groups share the LR: one ``lr`` trace, not two copies."""
    result = train_config(
        make_cfg(f"logger.tracking_uri={tracking_uri}", "optimizer=adamw", "trainer.max_steps=12")
    )
    client = MlflowClient(tracking_uri)
    metrics = client.get_run(str(result.run_id)).data.metrics
    assert "lr" in metrics and not {"lr/decay", "lr/no_decay"} & set(metrics)
    steps = sorted(m.step for m in client.get_metric_history(str(result.run_id), "lr"))
    assert steps == list(range(12))


def test_schedule_free_trains_evaluates_on_averaged_weights_and_logs_its_lr(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    result = train_config(
        make_cfg(
            f"logger.tracking_uri={tracking_uri}",
            "optimizer=sf_adamw",
            "optimizer.warmup_steps=20",
            "schedule=constant",
            "trainer.max_epochs=3",
        )
    )
    assert result.metrics["test/acc"] > 0.9
    client = MlflowClient(tracking_uri)
    history = sorted(client.get_metric_history(str(result.run_id), "sf_lr"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(120))
    assert history[0].value == 0.0025 / 20 and history[19].value == 0.0025 == history[-1].value


def test_group_lr_scale_by_name_pattern(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = build_optimizer(
        net, {"_target_": "torch.optim.SGD", "lr": 0.1, "group_lr_scale": {r"^2\.": 10.0}}
    )
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups.keys() == {r"^2\.", "all"}
    assert groups[r"^2\."]["lr"] == 1.0 and groups["all"]["lr"] == 0.1
    assert len(groups[r"^2\."]["params"]) == 2

    result = train_config(
        make_cfg(
            f"logger.tracking_uri={tracking_uri}",
            "+optimizer.group_lr_scale={net.5: 0.5}",  # the MLP head
            "trainer.max_steps=8",
        )
    )
    client = MlflowClient(tracking_uri)
    head = sorted(client.get_metric_history(str(result.run_id), "lr/net.5"), key=lambda m: m.step)
    rest = sorted(client.get_metric_history(str(result.run_id), "lr/all"), key=lambda m: m.step)
    assert [m.step for m in head] == list(range(8))
    for a, b in zip(head, rest, strict=True):
        assert a.value == 0.5 * b.value


def test_scale_lr_rules(make_cfg: Callable[..., DictConfig], tracking_uri: str) -> None:
    assert scaled_lr(0.1, "linear", 128, 32) == pytest.approx(0.4)
    assert scaled_lr(0.1, "sqrt", 128, 32) == pytest.approx(0.2)
    assert scaled_lr(0.1, "none", 128, 32) == 0.1
    with pytest.raises(ConfigError, match=r"optimizer\.scale_lr"):
        scaled_lr(0.1, "cubic", 128, 32)
    result = train_config(
        make_cfg(
            f"logger.tracking_uri={tracking_uri}",
            "optimizer.scale_lr=linear",
            "optimizer.reference_batch_size=16",
            "trainer.accumulate_grad_batches=2",
            "schedule=constant",
            "trainer.max_steps=3",
        )
    )
    history = MlflowClient(tracking_uri).get_metric_history(str(result.run_id), "lr")
    assert [m.value for m in history] == pytest.approx([0.1 * 32 * 2 / 16] * 3)


class Weights(pl.Callback):
    """The flattened parameters when fitting starts and ends."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = parameters_to_vector(pl_module.parameters()).detach().clone()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = parameters_to_vector(pl_module.parameters()).detach().clone()


def fit_weights(cfg: DictConfig) -> Weights:
    weights = Weights()
    train_config(cfg, callbacks=[weights])
    return weights


def test_accumulating_two_half_batches_equals_one_full_batch(
    make_cfg: Callable[..., DictConfig],
) -> None:
    """Accumulation is lrexp's own (manual optimization): 2 x 16 examples with
    accumulate_grad_batches=2 make the same updates as batches of 32 (the MLP's LayerNorm is
    per example, and the shuffled order does not depend on the batch size)."""
    common = ("logger=none", "schedule=cosine", "optimizer=momentum", "trainer.max_steps=20")
    full = fit_weights(make_cfg(*common, "dataset.batch_size=32"))
    halves = fit_weights(
        make_cfg(*common, "dataset.batch_size=16", "trainer.accumulate_grad_batches=2")
    )
    torch.testing.assert_close(halves.start, full.start, rtol=0, atol=0)
    assert (full.end - full.start).norm() > 0.1  # 20 real updates
    torch.testing.assert_close(halves.end, full.end, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_bounds_the_update(
    make_cfg: Callable[..., DictConfig], algorithm: str
) -> None:
    """One plain-SGD step at lr 0.1 with gradients clipped at 0.001 moves the weights by at
    most 0.1 * 0.001 (in L2 norm, or per coordinate for ``value``)."""
    clip, lr = 1e-3, 0.1
    weights = fit_weights(
        make_cfg(
            "logger=none",
            "schedule=constant",
            f"optimizer.lr={lr}",
            "optimizer.weight_decay=0",
            "trainer.max_steps=1",
            f"trainer.gradient_clip_val={clip}",
            f"+trainer.gradient_clip_algorithm={algorithm}",
        )
    )
    step = (weights.end - weights.start).double()  # float32 differences: ~1e-3 relative error
    size = step.norm() if algorithm == "norm" else step.abs().max()
    assert 0.5 * lr * clip < size <= lr * clip * 1.01  # unclipped: over 100x larger
