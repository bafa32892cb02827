"""A merge (``fork=merge``): a trunk's last kept checkpoints averaged, then evaluated as a run.

The weights of the checkpoints are averaged with equal weight through torch's
``AveragedModel``; the run trains no step: it validates and tests the averaged weights and
logs them at the trunk's step ``fork.at``, tagged like a cooldown fork (``fork_length`` 0,
``fork_shape`` merge), so a comparison sets merges and cooldowns from one trunk step side by
side, and the envelope's compute table counts them as free.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from lrexp.data.describe import describe, has_test_split
from lrexp.run.lifecycle import OnOpen, RunLifecycle
from lrexp.run.spec import TrainSpec
from lrexp.run.train import (
    RunResult,
    data_tags,
    lightning_module,
    pairing_tags,
    whole_val_modes,
    whole_validation,
)

#: the LightningModule's prefix of the network's weights in a checkpoint
NET_PREFIX = "net."


def net_weights(path: Path) -> dict[str, torch.Tensor]:
    """The network's weights (and buffers) in a Lightning checkpoint of lrexp's module."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix(NET_PREFIX): v for k, v in state.items() if k.startswith(NET_PREFIX)}


def average_into(net: nn.Module, checkpoints: Sequence[Path]) -> None:
    """Load into ``net`` the equal-weight average of the checkpoints' weights."""
    average = AveragedModel(net, use_buffers=True)
    for path in checkpoints:
        net.load_state_dict(net_weights(path))
        average.update_parameters(net)
    net.load_state_dict(average.module.state_dict())


def evaluate_merge(
    spec: TrainSpec, callbacks: Sequence[pl.Callback] = (), on_open: Sequence[OnOpen] = ()
) -> RunResult:
    """Validate and test the merge ``spec.fork`` describes, in a tracked run."""
    fork = spec.fork
    assert fork is not None and fork.merged, "evaluate_merge needs a merge's spec"
    if spec.threads:
        torch.set_num_threads(spec.threads)
    pl.seed_everything(spec.seed, verbose=False)
    data = spec.parts.data()
    info = describe(data, spec.world_size, load=True)
    net, info, task = spec.parts.build(info, data)
    tags = {**pairing_tags(net, data), **data_tags(spec, net, data)}
    average_into(net, [path for _, path in fork.merged])
    module = lightning_module(spec, net, task, spec.recorded)
    module.log_step = fork.at  # its metrics sit at the trunk's step, like a fork's start
    lifecycle = RunLifecycle(
        spec.run, spec.output_dir, on_open=list(on_open), extra_tags=fork.tags(), defer=False
    )
    modes = whole_val_modes(data, task.modes())
    lifecycle.tags.update({**tags, **task.tags(modes), "num_outputs_from": info.outputs_from})
    with lifecycle:
        trainer = pl.Trainer(
            **spec.trainer,
            logger=lifecycle.logger if lifecycle.logger is not None else False,
            callbacks=[*callbacks, *lifecycle.callbacks()],
            default_root_dir=str(spec.output_dir),
        )
        trainer.validate(module, datamodule=data, verbose=False)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics |= whole_validation(trainer, module, data)
        if has_test_split(data):
            trainer.test(module, datamodule=data, verbose=False)
            metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    return RunResult(metrics, lifecycle.run_id, spec.output_dir, fork.at, task.objective)
