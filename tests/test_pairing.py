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

from conftest import ROOT
from lrexp.config.training import train_config
from lrexp.data import DataInfo, TensorDataModule
from lrexp.digests import weights_digest
from lrexp.parts import build_model
from lrexp.tags import ORDER_UNKNOWN_TAG

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
    result = train_config(
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


def test_runs_whose_data_gives_no_order_are_unpaired_with_one_line(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """A data module without ``order_digest()`` tags its runs ``order_unknown`` with the
    reason; lrexp-compare then calls those comparisons unpaired, in one line."""
    from lrexp.compare.pairing import check, pairing_lines
    from lrexp.compare.records import RunRecord

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    plain = [f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]", "dataset=plain"]
    result = train_config(make_cfg(*plain, f"logger.tracking_uri={uri}", "trainer.max_steps=2"))
    tags = MlflowClient(uri).get_run(str(result.run_id)).data.tags
    assert "order_digest" not in tags and "init_digest" in tags
    assert tags[ORDER_UNKNOWN_TAG] == "PlainDataModule has no order_digest()"

    def record(arm: str, seed: str) -> RunRecord:
        return RunRecord(f"{arm}{seed}", f"{arm}-s{seed}", "FINISHED", seed, {}, tags, {}, 0, 1)

    a = {s: record("a", s) for s in ("0", "1")}
    b = {s: record("b", s) for s in ("0", "1")}
    pairing = check(a, b)
    assert not pairing.paired
    assert pairing.reason == "data order unknown: PlainDataModule has no order_digest()"
    lines = pairing_lines([("a", "b", pairing), ("c", "b", pairing)])
    assert lines == [
        "unpaired: 2 of 2 comparisons: data order unknown: PlainDataModule has no "
        "order_digest() (an order digest proves that runs with one seed saw the same batches); "
        "unpaired statistics used for them"
    ]
