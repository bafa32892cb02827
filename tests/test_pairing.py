"""Runs of different arms that share a seed are paired: same initial weights, same sample order
(proven by the ``init_digest`` and ``order_digest`` tags every run logs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from lrexp.data import DataInfo, TensorDataModule
from lrexp.digests import weights_digest
from lrexp.parts import build_model
from lrexp.train import train

ARMS = {
    "sgd-cosine": ["optimizer=sgd", "schedule=cosine"],
    "adam-constant": ["optimizer=adam", "schedule=constant", "optimizer.lr=0.003"],
    "sf_adamw-constant": ["optimizer=sf_adamw", "schedule=constant"],
    "rmsprop-plateau": ["optimizer=rmsprop", "schedule=plateau"],
    "momentum-wsd": ["optimizer=momentum", "schedule=wsd"],
}


def pairing_tags(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, name: str, *overrides: str
) -> dict[str, str]:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    result = train(
        make_cfg(
            f"logger.tracking_uri={uri}",
            f"paths.output_dir={tmp_path}/{name}",
            "trainer.max_steps=2",
            *overrides,
        )
    )
    assert result.run_id is not None
    tags = MlflowClient(uri).get_run(result.run_id).data.tags
    return {key: tags[key] for key in ("init_digest", "order_digest")}


@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm"])
def test_arms_sharing_a_seed_log_equal_digests_and_other_seeds_differ(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, model: str
) -> None:
    tags = {
        arm: pairing_tags(make_cfg, tmp_path, arm, f"model={model}", *overrides)
        for arm, overrides in ARMS.items()
    }
    assert len({tuple(t.values()) for t in tags.values()}) == 1, tags
    other_seed = pairing_tags(make_cfg, tmp_path, "seed1", f"model={model}", "seed=1")
    reference = tags["sgd-cosine"]
    assert other_seed["init_digest"] != reference["init_digest"]
    assert other_seed["order_digest"] != reference["order_digest"]
    for digest in reference.values():
        assert len(digest) == 16 and int(digest, 16) >= 0


def test_weights_digest_sees_one_changed_weight() -> None:
    pl.seed_everything(0, verbose=False)
    net = build_model({"_target_": "lrexp.models.MLP"}, DataInfo((64,), 10, 1))
    before = weights_digest(net)
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] += 1e-6
    assert weights_digest(net) != before


def test_order_digest_follows_the_training_order_and_augmentation() -> None:
    def digest(**changes: object) -> str:
        data = TensorDataModule(name="digits", **changes)
        data.setup("fit")
        return data.order_digest()

    base = digest(shuffle_seed=0)
    assert digest(shuffle_seed=0) == base
    assert digest(shuffle_seed=1) != base
    assert digest(shuffle_seed=0, batch_size=32) != base
    assert digest(shuffle_seed=0, shift=1) != base
