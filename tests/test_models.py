"""Every model is sized from the data and every model x offline dataset pair trains."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from omegaconf import DictConfig

from lrexp.models import MODELS, build_model
from lrexp.train import train


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 40)])
def test_models_size_themselves_from_the_input(model: str, shape: tuple[int, ...]) -> None:
    net = build_model({"name": model}, shape, 10)
    logits = net(torch.randn(5, *shape))
    assert logits.shape == (5, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


# (model, dataset) -> test accuracy that 2 epochs clearly exceed (chance is 0.1)
PAIRS = {
    ("mlp", "digits"): 0.8,
    ("cnn", "digits"): 0.8,
    ("lstm", "digits"): 0.3,
    ("mlp", "mnist1d"): 0.2,
    ("cnn", "mnist1d"): 0.35,
    ("lstm", "mnist1d"): 0.15,
}


@pytest.mark.parametrize(("model", "dataset"), list(PAIRS), ids=[f"{m}-{d}" for m, d in PAIRS])
def test_every_model_dataset_pair_trains(
    make_cfg: Callable[..., DictConfig], model: str, dataset: str
) -> None:
    result = train(
        make_cfg(f"model={model}", f"dataset={dataset}", "logger=none", "trainer.max_epochs=2")
    )
    assert math.isfinite(result.metrics["train/loss"])
    assert result.metrics["val/loss"] < math.log(10)  # below an untrained model's loss
    assert result.metrics["test/acc"] > PAIRS[(model, dataset)]
