"""Weight averaging beside a run (``averaging=ema|swa``), through torch's ``AveragedModel``.

The averaged weights never touch the optimizer or the schedule: the run trains as it would,
and at every validation and test the averaged model is evaluated beside the raw one
(``val/loss_ema``, ``test/loss_swa``). Both are modules of the LightningModule, so they are in
every checkpoint and a resumed run averages on exactly.

* ``ema``: an exponential moving average of every iterate, ``decay`` per optimizer step
  (``torch.optim.swa_utils.get_ema_multi_avg_fn``).
* ``swa``: the block average of Hägele et al. (2024): within each block of ``horizon``
  optimizer steps, the equal-weight mean of every ``interval``-th iterate; the model evaluated
  is the last completed block's mean (none before the first block completes).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lrexp.errors import ConfigError

KINDS = ("ema", "swa")


class Averager(nn.Module):
    """Keeps averaged weights of a network; :meth:`evaluated` is the model to evaluate."""

    name: str

    def update(self, net: nn.Module, step: int) -> None:
        """Take the network's weights after optimizer step ``step`` (1-based) into account."""
        raise NotImplementedError

    def evaluated(self) -> nn.Module | None:
        """The averaged model to evaluate now (None: nothing averaged yet)."""
        raise NotImplementedError

    def metric(self, split: str) -> str:
        """The key of a split's averaged loss: ``val/loss_ema``."""
        return f"{split}/loss_{self.name}"

    def modes(self) -> dict[str, str]:
        return {self.metric(split): "min" for split in ("val", "test")}


class EMA(Averager):
    name = "ema"

    def __init__(self, net: nn.Module, decay: float) -> None:
        super().__init__()
        self.average = AveragedModel(
            net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
        )

    def update(self, net: nn.Module, step: int) -> None:
        self.average.update_parameters(net)

    def evaluated(self) -> nn.Module | None:
        return self.average if int(self.average.n_averaged) > 0 else None


class BlockSWA(Averager):
    name = "swa"

    def __init__(self, net: nn.Module, interval: int, horizon: int) -> None:
        super().__init__()
        self.interval, self.horizon = interval, horizon
        self.running = AveragedModel(net, use_buffers=True)  # the current block's mean
        self.completed = copy.deepcopy(net)  # the last completed block's mean
        self.blocks: torch.Tensor
        self.register_buffer("blocks", torch.zeros((), dtype=torch.long))

    def update(self, net: nn.Module, step: int) -> None:
        if step % self.interval == 0:
            self.running.update_parameters(net)
        if step % self.horizon == 0:
            with torch.no_grad():
                for done, mean in zip(
                    self.completed.state_dict().values(),
                    self.running.module.state_dict().values(),
                    strict=True,
                ):
                    done.copy_(mean)
            self.running.n_averaged.zero_()  # the next update starts a new block
            self.blocks.add_(1)

    def evaluated(self) -> nn.Module | None:
        return self.completed if int(self.blocks) > 0 else None


def build_averager(settings: Mapping[str, Any], net: nn.Module) -> Averager:
    """The averager ``settings`` (``conf/averaging/<kind>.yaml``) describe, for ``net``."""
    kind = settings.get("name")
    if kind == "ema":
        return EMA(net, float(settings["decay"]))
    if kind == "swa":
        return BlockSWA(net, int(settings["interval"]), int(settings["horizon"]))
    raise ConfigError("averaging.name", f"must be one of {', '.join(KINDS)}, got {kind!r}")


def check_averaging(settings: Mapping[str, Any], total_steps: int, schedule_free: bool) -> None:
    """Refuse, naming the key: a decay outside (0, 1), an interval or horizon that is no
    positive integer, a block longer than the run, and averaging on a schedule-free optimizer
    (which already evaluates an average of its iterates)."""
    kind = settings.get("name")
    allowed = {"ema": ("name", "decay"), "swa": ("name", "interval", "horizon")}.get(str(kind))
    if allowed is None:
        raise ConfigError("averaging.name", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    for key in settings:
        if key not in allowed:
            raise ConfigError(f"averaging.{key}", f"unknown key; allowed: {', '.join(allowed)}")
    if schedule_free:
        raise ConfigError(
            "averaging",
            "a schedule-free optimizer already evaluates an average of its iterates; pick "
            "another optimizer or leave averaging out",
        )
    if kind == "ema":
        decay = settings.get("decay")
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay < 1:
            raise ConfigError("averaging.decay", f"must be in (0, 1), got {decay!r}")
        return
    for key in ("interval", "horizon"):
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"averaging.{key}", f"must be an integer >= 1, got {value!r}")
    if settings["horizon"] > total_steps:
        raise ConfigError(
            "averaging.horizon",
            f"a block of {settings['horizon']} steps is longer than the run ({total_steps} "
            "optimizer steps): no block would complete",
        )
    if settings["horizon"] % settings["interval"]:
        raise ConfigError(
            "averaging.interval",
            f"must divide averaging.horizon ({settings['horizon']}), got {settings['interval']}",
        )
