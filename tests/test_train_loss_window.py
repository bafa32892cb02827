"""``train/loss_window``: the mean training loss of every k optimizer steps, from a real
Trainer into a real MLflow SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import CONF
from lrexp.config.parts import data_info
from lrexp.config.preflight import check_overrides
from lrexp.config.training import train_spec
from lrexp.config.validate import validate
from lrexp.errors import ConfigError
from lrexp.run.callbacks import TRAIN_LOSS_WINDOW_KEY, TrainLossTrace
from lrexp.run.train import build_trainer, lightning_module
from lrexp.tasks import Classification
from lrexp.tracking.logger import BufferedMlflowLogger
from lrexp.tracking.store import TrackedRun


class Batches(pl.Callback):
    """Records every training batch: optimizer steps after it, its loss and its size."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float, int]] = []

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.seen.append((trainer.global_step, float(outputs["loss"]), len(batch[1])))


def expected_windows(seen: list[tuple[int, float, int]], every: int) -> list[tuple[int, float]]:
    """Example-weighted mean loss of the batches up to each multiple of ``every`` steps (and
    the last step)."""
    out: list[tuple[int, float]] = []
    total = count = 0.0
    last = 0
    for i, (step, loss, n) in enumerate(seen):
        total += loss * n
        count += n
        closes = step != last and step % every == 0
        if closes or (i == len(seen) - 1 and step != last):
            out.append((step, total / count))
            total = count = 0.0
            last = step
    return out


@pytest.mark.parametrize(("accumulate", "every"), [(1, 10), (2, 3)])
def test_window_means_reach_the_store(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, accumulate: int, every: int
) -> None:
    # digits: 1257 training examples, batches of 32 -> 40 batches per epoch (the last of 9)
    cfg = make_cfg(
        "trainer.max_epochs=2",
        f"trainer.accumulate_grad_batches={accumulate}",
        f"logger.train_loss_every={every}",
        "+trainer.limit_val_batches=0",
    )
    spec = train_spec(cfg)
    data = spec.parts.data()
    data.setup("fit")
    plan = spec.plan
    info = data_info(cfg.dataset)
    assert info.num_outputs is not None  # digits says its classes
    task = Classification(info.num_outputs)
    module = lightning_module(spec, spec.parts.build(info, data)[0], task)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = TrackedRun(uri, "window", "run", {})
    logger = BufferedMlflowLogger(run)
    trainer, _ = build_trainer(spec, logger, task)
    batches = Batches()
    trainer.callbacks.append(batches)  # type: ignore[attr-defined]
    trainer.fit(module, datamodule=data)
    logger.finalize("success")

    assert plan.total == 2 * 40 // accumulate
    expected = expected_windows(batches.seen, every)
    history = MlflowClient(uri).get_metric_history(run.run_id, TRAIN_LOSS_WINDOW_KEY)
    got = sorted((m.step, m.value) for m in history)
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert got[-1][0] == plan.total  # the last, shorter window too
    for (_, value), (_, want) in zip(got, expected, strict=True):
        assert value == pytest.approx(want, rel=1e-6)


def test_off_logs_nothing_and_bad_values_are_one_line(
    make_cfg: Callable[..., DictConfig],
) -> None:
    cfg = make_cfg("logger.train_loss_every=null")
    trainer, _ = build_trainer(train_spec(cfg), None, Classification(10))
    assert not any(isinstance(c, TrainLossTrace) for c in trainer.callbacks)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as caught:
        validate(make_cfg("logger.train_loss_every=0"))
    assert str(caught.value) == (
        "logger.train_loss_every: must be an integer >= 1 (optimizer steps) or null (off), got 0"
    )
    for bad, kind in (("2.5", "float"), ("true", "bool"), ("ten", "str")):
        with pytest.raises(ConfigError) as caught:
            check_overrides(CONF, [f"logger.train_loss_every={bad}"])
        assert str(caught.value).startswith(
            f"logger.train_loss_every: Value '{bad.replace('true', 'True')}' of type '{kind}' "
            "could not be converted to Integer"
        )


def test_window_state_survives_a_checkpoint() -> None:
    import torch

    trace = TrainLossTrace(5)
    trace.total, trace.examples, trace.last_step = torch.tensor(6.0), 3, 10
    copy = TrainLossTrace(5)
    copy.load_state_dict(trace.state_dict())
    assert (float(copy.total), copy.examples, copy.last_step) == (6.0, 3, 10)  # type: ignore[arg-type]
