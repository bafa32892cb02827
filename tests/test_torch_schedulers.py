"""A scheduler the user already has (``schedule=torch``, any ``torch.optim.lr_scheduler``
class or an optimizer-first factory with ``_partial_: true``): every step's ``lr`` of an lrexp
run equals the same scheduler stepped in a plain PyTorch loop (before: "missing 1 required
positional argument: 'optimizer'")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from mlflow import MlflowClient
from omegaconf import DictConfig
from plain_parts import plain_loop_lrs, warmup_then_linear

from lrexp.config.planning import planned_curve
from lrexp.config.training import train_config
from lrexp.errors import ConfigError

STEPS = 80  # digits at batch 32, 2 epochs
LR = 0.1  # conf/optimizer/sgd.yaml
TORCH = "torch.optim.lr_scheduler"


CASES = [
    (  # eta_min is an absolute LR: the probe optimizer carries the run's base LR
        ["schedule.eta_min=0.01"],
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.01),
    ),
    (
        [f"schedule._target_={TORCH}.StepLR", "~schedule.eta_min", "+schedule.step_size=30",
         "+schedule.gamma=0.5"],
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=30, gamma=0.5),
    ),
    (  # total_iters: null is the run's length
        [f"schedule._target_={TORCH}.LinearLR", "~schedule.eta_min", "+schedule.start_factor=1.0",
         "+schedule.end_factor=0.05", "+schedule.total_iters=null"],
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.05, total_iters=STEPS),
    ),
    (  # a factory that takes the optimizer first, like transformers' get_*_schedule_with_warmup
        ["schedule._target_=plain_parts.warmup_then_linear", "+schedule._partial_=true",
         "~schedule.eta_min", "+schedule.num_warmup_steps=8", "+schedule.num_training_steps=null"],
        lambda o: warmup_then_linear(o, 8, STEPS),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "make"), CASES, ids=["cosine", "step", "linear", "factory"])
def test_every_steps_lr_equals_the_plain_loops(
    make_cfg: Callable[..., DictConfig],
    tracking_uri: str,
    overrides: list[str],
    make: Callable[[torch.optim.Optimizer], Any],
) -> None:
    cfg = make_cfg(
        "schedule=torch",
        *overrides,
        "trainer.max_epochs=2",
        f"logger.tracking_uri={tracking_uri}",
        "logger.system_metrics=false",
    )
    expected = plain_loop_lrs(STEPS, LR, make)
    assert planned_curve(cfg) == pytest.approx(expected, rel=1e-12, abs=1e-15)  # the preview
    result = train_config(cfg)
    history = MlflowClient(tracking_uri).get_metric_history(str(result.run_id), "lr")
    trace = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(STEPS))
    assert trace == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert len(set(trace)) > 2  # the schedule moved


def test_reduce_on_plateau_follows_the_runs_metric(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    """``ReduceLROnPlateau`` is stepped with ``schedule.monitor`` after every validation: with
    ``patience=0`` and a ``threshold`` no validation can beat, the LR halves after each one
    but the first."""
    cfg = make_cfg(
        "schedule=torch",
        f"schedule._target_={TORCH}.ReduceLROnPlateau",
        "~schedule.eta_min",
        "+schedule.monitor=val/acc",
        "+schedule.mode=max",
        "+schedule.patience=0",
        "+schedule.factor=0.5",
        "+schedule.threshold=10.0",
        "trainer.max_epochs=3",
        f"logger.tracking_uri={tracking_uri}",
        "logger.system_metrics=false",
    )
    result = train_config(cfg)
    history = MlflowClient(tracking_uri).get_metric_history(str(result.run_id), "lr")
    trace = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert trace == pytest.approx([LR] * 80 + [LR / 2] * 40)


def test_a_metric_for_a_step_driven_scheduler_is_refused(
    make_cfg: Callable[..., DictConfig],
) -> None:
    with pytest.raises(ConfigError, match=r"^schedule\.monitor: CosineAnnealingLR is stepped"):
        planned_curve(make_cfg("schedule=torch", "+schedule.monitor=val/acc"))
    plateau = (f"schedule._target_={TORCH}.ReduceLROnPlateau", "~schedule.eta_min")
    with pytest.raises(ConfigError, match=r"^schedule\.monitor: must be a metric lrexp logs"):
        planned_curve(make_cfg("schedule=torch", *plateau, "+schedule.monitor=val/f1"))
    with pytest.raises(ConfigError, match=r"^schedule\._target_: StepLR: TypeError: "):
        planned_curve(
            make_cfg("schedule=torch", f"schedule._target_={TORCH}.StepLR", "~schedule.eta_min")
        )
