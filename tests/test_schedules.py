"""Schedules against their references: PyTorch schedulers step by step, Keras/optax formulas,
hand-computed metric-driven traces, hypothesis properties, validation, epochs and state.

Run with ``-s`` to print the largest relative error observed against each reference.
"""

from __future__ import annotations

import io
import itertools
import math
import random
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytorch_lightning.loggers.logger import Logger
from torch.optim import lr_scheduler as torch_sched

from lrexp.errors import ConfigError
from lrexp.run.callbacks import LRTrace
from lrexp.schedules import REGISTRY, Schedule, Warmup, build_schedule
from lrexp.schedules.closed_form import OneCycle
from lrexp.schedules.lr_scheduler import ScheduledLR, momentum_key

LR = 0.1
TOL = 1e-9
#: reference name -> largest relative error seen (printed at the end of the module with -s)
OBSERVED: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_errors() -> Iterator[None]:
    yield
    print("\nmax relative error per reference:")
    for name, err in sorted(OBSERVED.items()):
        print(f"  {name:55s} {err:.3g}")


def rel_err(a: float, b: float) -> float:
    a, b = float(a), float(b)
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def record(name: str, errs: list[float]) -> None:
    worst = max(errs, default=0.0)
    OBSERVED[name] = max(OBSERVED.get(name, 0.0), worst)
    assert worst <= TOL, (name, worst)


def make_optimizer(kind: str = "sgd", lr: float = LR, **kwargs: Any) -> torch.optim.Optimizer:
    param = torch.nn.Parameter(torch.zeros(1))
    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}
    return classes[kind]([param], lr=lr, **kwargs)


def build(name: str, total: int | None = None, base_lr: float = LR, **params: Any) -> Schedule:
    return build_schedule({"name": name, **params}, total, base_lr)


def momentum_of(optimizer: torch.optim.Optimizer) -> float:
    group = optimizer.param_groups[0]
    return float(group["betas"][0] if "betas" in group else group["momentum"])


def compare(
    name: str,
    schedule: Schedule,
    make_reference: Callable[[torch.optim.Optimizer], Any],
    steps: int,
    kind: str = "sgd",
    check_momentum: bool = False,
    **opt_kwargs: Any,
) -> tuple[list[float], list[float]]:
    """Step a ScheduledLR and a torch scheduler on identical optimizers; compare each step."""
    ours_opt, ref_opt = make_optimizer(kind, **opt_kwargs), make_optimizer(kind, **opt_kwargs)
    ours = ScheduledLR(ours_opt, schedule)
    ref = make_reference(ref_opt)
    ours_lrs, ref_lrs, errs, m_errs = [], [], [], []
    for _ in range(steps):
        ours_lrs.append(ours_opt.param_groups[0]["lr"])
        ref_lrs.append(ref_opt.param_groups[0]["lr"])
        errs.append(rel_err(ours_lrs[-1], ref_lrs[-1]))
        if check_momentum:
            m_errs.append(rel_err(momentum_of(ours_opt), momentum_of(ref_opt)))
        ours_opt.step()
        ref_opt.step()
        ours.step()
        ref.step()
    record(name, errs)
    if check_momentum:
        record(f"{name} (momentum)", m_errs)
    return ours_lrs, ref_lrs


# --------------------------------------------------------------------------- PyTorch references


@pytest.mark.parametrize(("step_size", "gamma"), [(1, 0.9), (7, 0.5), (25, 0.1)])
def test_step_matches_steplr(step_size: int, gamma: float) -> None:
    schedule = build("step", step_size=step_size, gamma=gamma)
    compare("step vs StepLR", schedule, lambda o: torch_sched.StepLR(o, step_size, gamma), 120)


def test_multistep_matches_multisteplr() -> None:
    milestones = [5, 12, 13, 40]
    schedule = build("multistep", milestones=milestones, gamma=0.3)
    compare(
        "multistep vs MultiStepLR",
        schedule,
        lambda o: torch_sched.MultiStepLR(o, milestones, 0.3),
        80,
    )


@pytest.mark.parametrize("gamma", [0.97, 0.5, 1.02])
def test_exponential_matches_exponentiallr(gamma: float) -> None:
    schedule = build("exponential", gamma=gamma)
    compare(
        "exponential vs ExponentialLR", schedule, lambda o: torch_sched.ExponentialLR(o, gamma), 150
    )


@pytest.mark.parametrize("end_factor", [0.0, 0.01, 0.5, 1.0])
def test_linear_matches_linearlr(end_factor: float) -> None:
    total = 50
    schedule = build("linear", total=total, end_factor=end_factor)
    compare(
        "linear vs LinearLR(start_factor=1)",
        schedule,
        lambda o: torch_sched.LinearLR(o, 1.0, end_factor, total_iters=total),
        total + 30,
    )


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.7])
def test_polynomial_matches_polynomiallr(power: float) -> None:
    total = 60
    schedule = build("polynomial", total=total, power=power, end_factor=0.0)
    ours, ref = compare(
        "polynomial vs PolynomialLR",
        schedule,
        lambda o: torch_sched.PolynomialLR(o, total_iters=total, power=power),
        total + 20,
    )
    assert ours[-1] == ref[-1] == 0.0  # both hold 0 after the end


@pytest.mark.parametrize(("total", "min_factor"), [(1, 0.0), (37, 0.0), (100, 0.05), (64, 1.0)])
def test_cosine_matches_cosineannealinglr_then_holds(total: int, min_factor: float) -> None:
    schedule = build("cosine", total=total, min_factor=min_factor)
    ours, _ = compare(
        "cosine vs CosineAnnealingLR (t <= T_max)",
        schedule,
        lambda o: torch_sched.CosineAnnealingLR(o, T_max=total, eta_min=min_factor * LR),
        total + 1,
    )
    after = [LR * schedule.lr_at(t) for t in range(total, total + 20)]
    assert after == [ours[-1]] * 20  # ours holds its value at T
    if min_factor < 1:  # torch's rises again after T_max
        opt = make_optimizer()
        ref_sched = torch_sched.CosineAnnealingLR(opt, T_max=total, eta_min=min_factor * LR)
        torch_after = []
        for _ in range(2 * total):
            opt.step()
            ref_sched.step()
            torch_after.append(opt.param_groups[0]["lr"])
        assert max(torch_after[total:]) > ours[-1]


@pytest.mark.parametrize("period_mult", [1, 2, 3])
@pytest.mark.parametrize("min_factor", [0.0, 0.1])
def test_cosine_restarts_matches_warm_restarts(period_mult: int, min_factor: float) -> None:
    schedule = build("cosine_restarts", period=7, period_mult=period_mult, min_factor=min_factor)
    compare(
        "cosine_restarts vs CosineAnnealingWarmRestarts",
        schedule,
        lambda o: torch_sched.CosineAnnealingWarmRestarts(
            o, T_0=7, T_mult=period_mult, eta_min=min_factor * LR
        ),
        300,
    )


CYCLIC_CASES = [
    ("triangular", 10, None, 1.0),
    ("triangular", 4, 11, 1.0),
    ("triangular2", 6, 3, 1.0),
    ("exp_range", 5, 9, 0.98),
]


@pytest.mark.parametrize(("mode", "up", "down", "gamma"), CYCLIC_CASES)
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_cyclic_matches_cycliclr_with_momentum(
    mode: Any, up: int, down: int | None, gamma: float, kind: str
) -> None:
    schedule = build(
        "cyclic", mode=mode, min_factor=0.2, step_size_up=up, step_size_down=down, gamma=gamma
    )
    compare(
        f"cyclic vs CyclicLR ({kind})",
        schedule,
        lambda o: torch_sched.CyclicLR(
            o, 0.2 * LR, LR, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma
        ),
        100,
        kind=kind,
        check_momentum=True,
        **({"momentum": 0.9} if kind == "sgd" else {}),
    )


def test_cyclic_without_momentum_cycling_leaves_momentum_alone() -> None:
    schedule = build("cyclic", step_size_up=4, cycle_momentum=False)
    compare(
        "cyclic vs CyclicLR (cycle_momentum=false)",
        schedule,
        lambda o: torch_sched.CyclicLR(o, 0.1 * LR, LR, step_size_up=4, cycle_momentum=False),
        30,
        check_momentum=True,
        momentum=0.7,
    )
    opt = make_optimizer("sgd", momentum=0.7)
    scheduler = ScheduledLR(opt, schedule)
    for _ in range(10):
        opt.step()
        scheduler.step()
        assert opt.param_groups[0]["momentum"] == 0.7
    assert scheduler.momentum_key is None


ONECYCLE_CASES = [
    ("cos", False, 0.3, 25.0, 1e4),
    ("linear", False, 0.25, 10.0, 100.0),
    ("cos", True, 0.3, 25.0, 1e4),
    ("linear", True, 0.45, 5.0, 1e3),
]


@pytest.mark.parametrize(("anneal", "three_phase", "pct", "div", "final_div"), ONECYCLE_CASES)
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_onecycle_matches_onecyclelr_with_momentum(
    anneal: Any, three_phase: bool, pct: float, div: float, final_div: float, kind: str
) -> None:
    total = 97
    schedule = build(
        "onecycle",
        total=total,
        pct_start=pct,
        anneal=anneal,
        three_phase=three_phase,
        div_factor=div,
        final_div_factor=final_div,
    )
    ours, _ = compare(
        f"onecycle vs OneCycleLR ({kind})",
        schedule,
        lambda o: torch_sched.OneCycleLR(
            o,
            max_lr=LR,
            total_steps=total,
            pct_start=pct,
            anneal_strategy=anneal,
            three_phase=three_phase,
            div_factor=div,
            final_div_factor=final_div,
        ),
        total,
        kind=kind,
        check_momentum=True,
        **({"momentum": 0.9} if kind == "sgd" else {}),
    )
    assert ours[-1] == pytest.approx(LR / (div * final_div), rel=1e-12)
    assert schedule.lr_at(total + 5) == schedule.lr_at(total - 1)  # holds after T
    assert schedule.momentum_at(total + 5) == schedule.momentum_at(total - 1) == 0.95


def test_onecycle_turns_on_sgd_momentum_like_torch() -> None:
    """torch accepts SGD with momentum=0 for momentum cycling (and switches momentum on)."""
    schedule = build("onecycle", total=40)
    compare(
        "onecycle vs OneCycleLR (SGD momentum=0)",
        schedule,
        lambda o: torch_sched.OneCycleLR(o, max_lr=LR, total_steps=40),
        40,
        check_momentum=True,
    )


def test_momentum_cycling_needs_momentum_or_betas() -> None:
    for name, params in (("onecycle", {"total": 20}), ("cyclic", {})):
        schedule = build(name, **params)
        with pytest.raises(ValueError, match="momentum or beta1"):
            torch_sched.OneCycleLR(make_optimizer("adagrad"), max_lr=LR, total_steps=20)
        with pytest.raises(ConfigError) as err:
            ScheduledLR(make_optimizer("adagrad"), schedule)
        assert err.value.key == "schedule.cycle_momentum"
        off = build(name, cycle_momentum=False, **params)
        ScheduledLR(make_optimizer("adagrad"), off)  # fine once switched off
    assert momentum_key(["lr", "betas", "eps"]) == "betas"
    assert momentum_key(["lr", "momentum"]) == "momentum"


PLATEAU_CASES = [
    ("val/loss", "min", "rel", 1e-2, 2, 0, 0.0, 0.5),
    ("val/loss", "min", "abs", 0.02, 1, 2, 0.004, 0.3),
    ("val/acc", "max", "rel", 1e-3, 3, 1, 0.0, 0.7),
    ("val/acc", "max", "abs", 0.01, 0, 3, 0.02, 0.5),
]


def metric_sequence(mode: str, seed: int, n: int = 80) -> list[float]:
    """A noisy trend with long stalls, so that patience, cooldown and thresholds all matter."""
    rng = random.Random(seed)
    value, out = (2.0 if mode == "min" else 0.1), []
    for i in range(n):
        stalled = (i // 10) % 2 == 1
        drift = 0.0 if stalled else rng.uniform(0.0, 0.05)
        value += (-drift if mode == "min" else drift) + rng.uniform(-0.01, 0.01)
        out.append(round(value, 4))
    return out


@pytest.mark.parametrize(
    ("monitor", "mode", "threshold_mode", "threshold", "patience", "cooldown", "min_lr", "factor"),
    PLATEAU_CASES,
)
def test_plateau_matches_reducelronplateau(
    monitor: str,
    mode: Any,
    threshold_mode: Any,
    threshold: float,
    patience: int,
    cooldown: int,
    min_lr: float,
    factor: float,
) -> None:
    params: dict[str, Any] = {
        "monitor": monitor,
        "mode": mode,
        "threshold_mode": threshold_mode,
        "threshold": threshold,
        "patience": patience,
        "cooldown": cooldown,
        "min_lr": min_lr,
        "factor": factor,
    }
    ours_opt, ref_opt = make_optimizer(), make_optimizer()
    ours = ScheduledLR(ours_opt, build("plateau", total=1000, **params))
    ref = torch_sched.ReduceLROnPlateau(
        ref_opt,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_lr,
    )
    errs: list[float] = []
    seen: set[float] = set()
    for value in metric_sequence(mode, seed=patience + 10 * cooldown):
        for _ in range(3):  # the LR holds between validations
            ours_opt.step()
            ours.step()
            ref_opt.step()
            errs.append(rel_err(ours_opt.param_groups[0]["lr"], ref_opt.param_groups[0]["lr"]))
        ours.observe({monitor: value, "train/loss": 123.0})
        ref.step(value)
        errs.append(rel_err(ours_opt.param_groups[0]["lr"], ref_opt.param_groups[0]["lr"]))
        seen.add(round(ref_opt.param_groups[0]["lr"], 15))
    record("plateau vs ReduceLROnPlateau", errs)
    assert len(seen) >= 3, seen  # the sequence really exercised reductions
    if min_lr:
        assert min(seen) == pytest.approx(min_lr)


def test_plateau_ignores_a_validation_without_the_monitor() -> None:
    opt = make_optimizer()
    scheduler = ScheduledLR(opt, build("plateau", total=100, patience=0, factor=0.5))
    scheduler.observe({"val/loss": 1.0})
    scheduler.observe({"val/acc": 0.5})  # no val/loss: not a bad epoch
    assert opt.param_groups[0]["lr"] == LR
    scheduler.observe({"val/loss": 1.0})
    assert opt.param_groups[0]["lr"] == pytest.approx(LR * 0.5)


@pytest.mark.parametrize("start_factor", [0.1, 0.5, 1.0])
@pytest.mark.parametrize(
    ("name", "params", "make"),
    [
        ("cosine", {"total": 80}, lambda o: torch_sched.CosineAnnealingLR(o, T_max=80)),
        ("step", {"step_size": 9, "gamma": 0.5}, lambda o: torch_sched.StepLR(o, 9, 0.5)),
        ("exponential", {"gamma": 0.95}, lambda o: torch_sched.ExponentialLR(o, 0.95)),
        ("multistep", {"milestones": [3, 30]}, lambda o: torch_sched.MultiStepLR(o, [3, 30])),
    ],
)
def test_linear_warmup_matches_sequentiallr(
    start_factor: float, name: str, params: dict[str, Any], make: Callable[..., Any]
) -> None:
    warm = 12
    schedule = build_schedule(
        {"name": name, "warmup": {"steps": warm, "start_factor": start_factor}, **params},
        warm + 80,
        LR,
    )

    def reference(opt: torch.optim.Optimizer) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warmup = torch_sched.LinearLR(opt, start_factor, 1.0, total_iters=warm)
            return torch_sched.SequentialLR(opt, [warmup, make(opt)], milestones=[warm])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's internal step(0) deprecation warning
        compare("warmup+schedule vs SequentialLR(LinearLR, ...)", schedule, reference, warm + 81)


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_warmup_shapes_and_momentum_against_formulas(shape: str) -> None:
    warm, total, s = 10, 50, 0.2
    schedule = build_schedule(
        {"name": "onecycle", "warmup": {"steps": warm, "start_factor": s, "shape": shape}},
        warm + total,
        LR,
    )
    assert isinstance(schedule, Warmup)
    inner = build("onecycle", total=total)
    ramps = {
        "linear": lambda p: s + (1 - s) * p,
        "cosine": lambda p: s + (1 - s) * (1 - math.cos(math.pi * p)) / 2,
        "exponential": lambda p: s * (1 / s) ** p,
    }
    errs = []
    for t in range(warm + total + 5):
        expected = ramps[shape](t / warm) if t < warm else inner.lr_at(t - warm)
        errs.append(rel_err(schedule.lr_at(t), expected))
        momentum = 0.95 if t < warm else inner.momentum_at(t - warm)
        assert schedule.momentum_at(t) == momentum  # max momentum held during warmup
    record("warmup ramps vs formula", errs)
    assert schedule.lr_at(warm) == inner.lr_at(0)


# ----------------------------------------------------------------- formula (Keras/optax) references


def test_piecewise_constant_switches_at_the_boundary() -> None:
    """optax piecewise_constant_schedule (and MultiStepLR): the value changes at t = b."""
    schedule = build("piecewise_constant", boundaries=[3, 7], values=[1.0, 0.5, 0.2])
    expected = [1.0] * 3 + [0.5] * 4 + [0.2] * 10
    assert [schedule.lr_at(t) for t in range(17)] == expected
    record("piecewise_constant vs optax formula", [0.0])


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_matches_keras_exponentialdecay(staircase: bool) -> None:
    schedule = build("exponential", gamma=0.6, decay_steps=10, staircase=staircase)
    errs = []
    for t in range(200):
        exponent = t // 10 if staircase else t / 10
        errs.append(rel_err(schedule.lr_at(t), 0.6**exponent))
    record("exponential vs Keras ExponentialDecay", errs)


@pytest.mark.parametrize(("rate", "decay_steps", "staircase"), [(0.5, 10, False), (2.0, 7, True)])
def test_inverse_time_matches_keras_inversetimedecay(
    rate: float, decay_steps: int, staircase: bool
) -> None:
    schedule = build("inverse_time", decay_rate=rate, decay_steps=decay_steps, staircase=staircase)
    errs = []
    for t in range(300):
        ratio = t // decay_steps if staircase else t / decay_steps
        errs.append(rel_err(schedule.lr_at(t), 1 / (1 + rate * ratio)))
    record("inverse_time vs Keras InverseTimeDecay", errs)


def test_inverse_time_is_the_seeds_inverse_decay() -> None:
    total = 120
    schedule = build("inverse_time", decay_rate=1.0, decay_steps=total)
    errs = [rel_err(schedule.lr_at(t), (1 + t / total) ** -1) for t in range(400)]
    record("inverse_time vs seeds' lr*(1+t/T)^-1", errs)


@pytest.mark.parametrize("shape", ["linear", "cosine", "sqrt", "exp"])
def test_wsd_matches_its_formula(shape: str) -> None:
    total, frac, low = 100, 0.3, 0.1
    schedule = build("wsd", total=total, decay_frac=frac, decay_shape=shape, min_factor=low)
    decay = round(frac * total)
    falls = {
        "linear": lambda p: p,
        "cosine": lambda p: (1 - math.cos(math.pi * p)) / 2,
        "sqrt": math.sqrt,
    }
    errs = []
    for t in range(total + 20):
        p = min(max(t - (total - decay), 0), decay) / decay
        expected = low**p if shape == "exp" else 1 - (1 - low) * falls[shape](p)
        errs.append(rel_err(schedule.lr_at(t), expected))
    record("wsd vs formula", errs)
    assert schedule.lr_at(total - decay - 1) == 1.0
    assert schedule.lr_at(total) == pytest.approx(low)


@pytest.mark.parametrize("shape", ["linear", "cosine", "sqrt", "exp"])
def test_cooldown_on_a_constant_trunk_is_wsd_bitwise(shape: str) -> None:
    warmup = {"steps": 10, "start_factor": 0.1}
    wsd = build_schedule(
        {
            "name": "wsd",
            "decay_frac": 20 / 70,
            "decay_shape": shape,
            "min_factor": 0.05,
            "warmup": warmup,
        },
        80,
    )
    fork = build_schedule(
        {"name": "cooldown", "trunk": {"name": "constant", "warmup": warmup}, "at": 60,
         "cooldown": 20, "shape": shape, "min_factor": 0.05, "trunk_total": 500},
        80,
    )  # fmt: skip
    assert [fork.lr_at(t) for t in range(100)] == [wsd.lr_at(t) for t in range(100)]


def test_cooldown_starts_from_the_trunks_value_and_scales_the_floor() -> None:
    trunk = {"name": "cosine", "min_factor": 0.0}
    cosine = build_schedule(trunk, 100)
    fork = build_schedule(
        {
            "name": "cooldown",
            "trunk": trunk,
            "at": 40,
            "cooldown": 10,
            "min_factor": 0.1,
            "trunk_total": 100,
        },
        50,
    )
    assert [fork.lr_at(t) for t in range(41)] == [cosine.lr_at(t) for t in range(41)]
    start = cosine.lr_at(40)
    for t in range(40, 60):
        done = min(t - 40, 10) / 10
        assert fork.lr_at(t) == pytest.approx(start * (1 - 0.9 * done), rel=1e-12)
    assert fork.lr_at(50) == pytest.approx(0.1 * start, rel=1e-12)


def test_inverse_sqrt_matches_rsqrt_formula() -> None:
    schedule = build("inverse_sqrt", timescale=50)
    errs = [rel_err(schedule.lr_at(t), 1 / math.sqrt(1 + t / 50)) for t in range(500)]
    record("inverse_sqrt vs 1/sqrt(1+t/timescale)", errs)


def test_bold_driver_scripted() -> None:
    opt = make_optimizer()
    scheduler = ScheduledLR(
        opt,
        build("bold_driver", increase=1.1, decrease=0.5, min_lr=0.01, max_lr=0.12),
    )
    script = [  # (val/loss, expected LR after the validation)
        (1.0, 0.1),  # first validation: nothing to compare with
        (0.9, 0.11),  # better: * 1.1
        (0.8, 0.12),  # better: 0.121 clamped to max_lr
        (0.8, 0.12),  # unchanged: no change
        (0.85, 0.06),  # worse: * 0.5
        (0.9, 0.03),
        (0.95, 0.015),
        (1.0, 0.01),  # 0.0075 clamped to min_lr
        (0.5, 0.011),
    ]
    errs = []
    for value, expected in script:
        for _ in range(4):
            opt.step()
            scheduler.step()
        scheduler.observe({"val/loss": value})
        errs.append(rel_err(opt.param_groups[0]["lr"], expected))
    record("bold_driver vs hand-computed", errs)


def test_adaptive_step_scripted() -> None:
    opt = make_optimizer()
    scheduler = ScheduledLR(
        opt,
        build(
            "adaptive_step",
            step_size=10,
            gamma=0.5,
            shrink=0.5,
            grow=2.0,
            min_period=4,
            max_period=40,
        ),
    )
    # validation at step -> val/loss; expected multipliers at the listed steps (hand-computed)
    observations = {15: 1.0, 25: 0.8, 45: 0.9, 52: 0.95, 56: 1.0, 60: 1.1}
    expected = {
        0: 1.0, 9: 1.0, 10: 0.5, 15: 0.5, 19: 0.5,  # period 10
        20: 0.25, 25: 0.25, 39: 0.25, 40: 0.125,  # improved at 25: period 20 from 20
        45: 0.125, 49: 0.125, 50: 0.0625,  # worse at 45: period 10 from 40
        52: 0.0625, 54: 0.0625, 55: 0.03125,  # worse at 52: period 5 from 50
        56: 0.03125, 58: 0.03125, 59: 0.015625,  # worse at 56: period 4 (min) from 55
        60: 0.015625, 62: 0.015625, 63: 0.0078125,  # worse at 60: period stays 4
    }  # fmt: skip
    errs = []
    for t in range(64):
        if t in observations:
            scheduler.observe({"val/loss": observations[t]})
        if t in expected:
            errs.append(rel_err(opt.param_groups[0]["lr"], LR * expected[t]))
        opt.step()
        scheduler.step()
    record("adaptive_step vs hand-computed", errs)


# ------------------------------------------------------------------------- hypothesis properties

MONOTONE = (
    "step", "multistep", "exponential", "inverse_time", "linear", "polynomial", "cosine", "wsd",
    "inverse_sqrt", "cooldown",
)  # fmt: skip
FINITE = ("linear", "polynomial", "cosine", "onecycle", "wsd", "cooldown", "tabulated")

unit = st.floats(min_value=0.0, max_value=1.0)
positive_unit = st.floats(min_value=0.01, max_value=1.0)
FAMILY_PARAMS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "constant": st.fixed_dictionaries({}),
    "step": st.fixed_dictionaries({"step_size": st.integers(1, 50), "gamma": st.floats(0.5, 1.0)}),
    "multistep": st.fixed_dictionaries(
        {
            "milestones": st.lists(st.integers(1, 400), max_size=4, unique=True).map(sorted),
            "gamma": positive_unit,
        }
    ),
    "piecewise_constant": st.integers(0, 3).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "boundaries": st.lists(
                    st.integers(1, 400), min_size=n, max_size=n, unique=True
                ).map(sorted),
                "values": st.lists(st.floats(0.01, 3.0), min_size=n + 1, max_size=n + 1),
            }
        )
    ),
    "exponential": st.fixed_dictionaries(
        {
            "gamma": st.floats(0.5, 1.0),
            "decay_steps": st.integers(1, 50),
            "staircase": st.booleans(),
        }
    ),
    "inverse_time": st.fixed_dictionaries(
        {
            "decay_rate": st.floats(0.0, 5.0),
            "decay_steps": st.integers(1, 50),
            "staircase": st.booleans(),
        }
    ),
    "linear": st.fixed_dictionaries({"end_factor": unit}),
    "polynomial": st.fixed_dictionaries({"power": st.floats(0.1, 5.0), "end_factor": unit}),
    "cosine": st.fixed_dictionaries({"min_factor": unit}),
    "cosine_restarts": st.fixed_dictionaries(
        {
            "period": st.integers(1, 60),
            "period_mult": st.sampled_from([1, 2, 3, 1.5]),
            "min_factor": unit,
            "cycle_decay": st.floats(0.5, 1.0),  # 0.5**400 cycles still > 0 in floats
        }
    ),
    "cyclic": st.fixed_dictionaries(
        {
            "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]),
            "min_factor": unit,
            "step_size_up": st.integers(1, 40),
            "step_size_down": st.none() | st.integers(1, 40),
            "gamma": st.floats(0.95, 1.0),
        }
    ),
    "onecycle": st.fixed_dictionaries(
        {
            "pct_start": st.floats(0.15, 0.5),  # pct * (run - warmup) > 1 step
            "div_factor": st.floats(1.5, 100.0),
            "final_div_factor": st.floats(1.0, 1e4),
            "anneal": st.sampled_from(["cos", "linear"]),
            "three_phase": st.booleans(),
        }
    ),
    "wsd": st.fixed_dictionaries(
        {
            "decay_frac": unit,
            "decay_shape": st.sampled_from(["linear", "cosine", "sqrt", "exp"]),
            "min_factor": positive_unit,
        }
    ),
    "inverse_sqrt": st.fixed_dictionaries({"timescale": st.integers(1, 500)}),
    "tabulated": st.integers(0, 4).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "at": st.lists(st.floats(0.01, 0.99), min_size=n, max_size=n, unique=True).map(
                    lambda inner: [0.0, *sorted(inner), 1.0]
                ),
                "values": st.lists(st.floats(0.01, 3.0), min_size=n + 2, max_size=n + 2),
            }
        )
    ),
    "cooldown": st.fixed_dictionaries(
        {
            "frac": st.floats(0.05, 1.0),
            "shape": st.sampled_from(["linear", "cosine", "sqrt", "exp"]),
            "min_factor": positive_unit,
        }
    ),
}
CLOSED_FORM = sorted(FAMILY_PARAMS)


@st.composite
def configured(draw: st.DrawFn, names: tuple[str, ...] | list[str] = CLOSED_FORM) -> tuple:
    name = draw(st.sampled_from(list(names)))
    params = draw(FAMILY_PARAMS[name])
    run = draw(st.integers(20, 300))
    warm = draw(st.integers(0, run // 2))
    warmup = {
        "steps": warm,
        "start_factor": draw(st.floats(0.01, 1.0)),
        "shape": draw(st.sampled_from(["linear", "cosine", "exponential"])),
    }
    cfg = {"name": name, "warmup": warmup, **params}
    return name, params, cfg, run


def test_tabulated_interpolates_its_table_linearly() -> None:
    """values at fractions of total, linear in between (numpy.interp as the reference), held
    after the end; resumable: a pure function of the step, also behind a warmup."""
    cfg = {"name": "tabulated", "at": [0.0, 0.25, 1.0], "values": [1.0, 0.5, 0.1]}
    schedule = build_schedule(cfg, 80)
    expected = np.interp(np.arange(120) / 80, [0.0, 0.25, 1.0], [1.0, 0.5, 0.1])
    record(
        "tabulated vs numpy.interp", [rel_err(schedule.lr_at(t), expected[t]) for t in range(120)]
    )
    assert schedule.length == 80 and schedule.lr_at(20) == 0.5 and schedule.lr_at(200) == 0.1
    warm = build_schedule({**cfg, "warmup": {"steps": 20}}, 100)
    assert warm.length == 100
    assert [warm.lr_at(20 + t) for t in range(80)] == [schedule.lr_at(t) for t in range(80)]
    opt = make_optimizer()
    scheduler = ScheduledLR(opt, schedule)
    errs = []
    for t in range(90):
        errs.append(rel_err(opt.param_groups[0]["lr"], LR * expected[t]))
        opt.step()
        scheduler.step()
    record("tabulated through ScheduledLR", errs)


def test_every_closed_form_family_has_a_strategy() -> None:
    metric = {name for name, cls in REGISTRY.items() if cls.metric_driven}
    assert set(CLOSED_FORM) == set(REGISTRY) - metric


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(configured())
def test_bounds(case: tuple) -> None:
    name, params, cfg, run = case
    schedule = build_schedule(cfg, run)
    length = schedule.length
    upper = max([*params.get("values", []), 1.0])
    for t in range(run + 50):
        value = schedule.lr_at(t)
        assert 0.0 <= value <= upper * (1 + 1e-12), (t, value)
        ended = length is not None and t >= length
        zero_floor = name == "cyclic" and params["min_factor"] == 0
        if not ended and not zero_floor:
            assert value > 0.0, (t, value)


@PROPERTY
@given(configured(MONOTONE))
def test_monotone_non_increasing_after_warmup(case: tuple) -> None:
    _, _, cfg, run = case
    schedule = build_schedule(cfg, run)
    warm = cfg["warmup"]["steps"]
    values = [schedule.lr_at(t) for t in range(warm, run + 50)]
    for t, (a, b) in enumerate(itertools.pairwise(values)):
        assert b <= a * (1 + 1e-12), (warm + t, a, b)


@PROPERTY
@given(configured())
def test_warmup_is_continuous_into_the_schedule(case: tuple) -> None:
    _, _, cfg, run = case
    warm = cfg["warmup"]["steps"]
    schedule = build_schedule(cfg, run)
    if warm == 0:
        assert not isinstance(schedule, Warmup)
        return
    assert isinstance(schedule, Warmup)
    start = cfg["warmup"]["start_factor"]
    assert schedule.lr_at(0) == pytest.approx(start, rel=1e-12)
    assert schedule.lr_at(warm) == schedule.inner.lr_at(0)
    ramp = [schedule.lr_at(t) for t in range(warm)]
    assert all(b >= a * (1 - 1e-12) for a, b in itertools.pairwise(ramp))
    assert all(start * (1 - 1e-12) <= v <= 1.0 for v in ramp)
    if schedule.cycles_momentum:
        assert {schedule.momentum_at(t) for t in range(warm + 1)} == {schedule.inner.momentum_at(0)}


@PROPERTY
@given(configured(FINITE))
def test_finite_families_hold_after_their_end(case: tuple) -> None:
    _, _, cfg, run = case
    schedule = build_schedule(cfg, run)
    assert schedule.length == run  # total: null = the run minus warmup
    final = schedule.lr_at(run)
    assert all(schedule.lr_at(t) == final for t in range(run, run + 60))
    if schedule.cycles_momentum:
        assert all(
            schedule.momentum_at(t) == schedule.momentum_at(run) for t in range(run, run + 9)
        )


@PROPERTY
@given(configured(["cyclic", "onecycle"]))
def test_momentum_moves_inversely_to_the_lr(case: tuple) -> None:
    name, _, cfg, run = case
    schedule = build_schedule(cfg, run)
    low, high = (0.85, 0.95) if name == "onecycle" else (0.8, 0.9)
    warm = cfg["warmup"]["steps"]
    inner = schedule.inner if isinstance(schedule, Warmup) else schedule

    def phase(t: int) -> Any:  # cyclic: one formula; onecycle: compare within a phase only
        return inner.locate(t - warm)[0] if isinstance(inner, OneCycle) else None

    points = [(schedule.lr_at(t), schedule.momentum_at(t), phase(t)) for t in range(warm, run + 5)]
    for _, momentum, _ in points:
        assert momentum is not None and low - 1e-12 <= momentum <= high + 1e-12
    for (lr0, m0, p0), (lr1, m1, p1) in itertools.pairwise(points):
        if p0 == p1:
            assert (lr1 - lr0) * (m1 - m0) <= 1e-15, (lr0, lr1, m0, m1)  # type: ignore[operator]


# ------------------------------------------------------------------------------- validation

INVALID = [
    ({"name": "step", "gamma": 0.0}, None, "schedule.gamma"),
    ({"name": "step", "gamma": -0.5}, 100, "schedule.gamma"),
    ({"name": "exponential", "gamma": 0}, None, "schedule.gamma"),
    ({"name": "multistep", "gamma": -1.0}, None, "schedule.gamma"),
    ({"name": "step", "step_size": 0}, None, "schedule.step_size"),
    ({"name": "step", "step_size": 2.5}, 100, "schedule.step_size"),
    ({"name": "multistep", "milestones": [10, 5]}, None, "schedule.milestones"),
    ({"name": "multistep", "milestones": [5, 5]}, 100, "schedule.milestones"),
    ({"name": "multistep", "milestones": [0, 5]}, None, "schedule.milestones[0]"),
    ({"name": "piecewise_constant", "boundaries": [3, 2]}, None, "schedule.boundaries"),
    ({"name": "piecewise_constant", "values": [1.0]}, None, "schedule.values"),
    ({"name": "tabulated", "at": [0.0, 0.5]}, None, "schedule.at"),
    ({"name": "tabulated", "at": [0.0, 0.6, 0.4, 1.0]}, None, "schedule.at"),
    ({"name": "tabulated", "at": [0.0, 1.5]}, None, "schedule.at[1]"),
    ({"name": "tabulated", "values": [1.0, -0.1, 0.0]}, None, "schedule.values[1]"),
    ({"name": "tabulated", "values": [1.0]}, None, "schedule.values"),
    ({"name": "cosine", "warmup": {"steps": 100}}, 100, "schedule.warmup.steps"),
    ({"name": "wsd", "decay_shape": "exp", "min_factor": 0.0}, None, "schedule.min_factor"),
    ({"name": "cooldown", "shape": "exp"}, None, "schedule.min_factor"),
    ({"name": "cooldown", "shape": "step"}, None, "schedule.shape"),
    ({"name": "cooldown", "at": -1}, None, "schedule.at"),
    ({"name": "cooldown", "cooldown": 0}, None, "schedule.cooldown"),
    ({"name": "cooldown", "trunk": {"name": "nope"}}, None, "schedule.trunk.name"),
    ({"name": "cooldown", "trunk": {"name": "cosine", "gama": 1}}, None, "schedule.trunk.gama"),
    ({"name": "cooldown", "trunk": {"name": "plateau"}}, None, "schedule.trunk.name"),
    (
        {"name": "cooldown", "trunk": {"name": "step", "interval": "epoch"}},
        100,
        "schedule.trunk.interval",
    ),
    ({"name": "cosine", "warmup": {"steps": 150}}, 100, "schedule.warmup.steps"),
    ({"name": "cosine", "warmup": {"frac": 0.999}}, 100, "schedule.warmup.frac"),
    ({"name": "cosine", "warmup": {"frac": 1.0}}, None, "schedule.warmup.frac"),
    ({"name": "cosine", "warmup": {"steps": 5, "frac": 0.1}}, None, "schedule.warmup.frac"),
    ({"name": "cosine", "warmup": {"start_factor": 0}}, None, "schedule.warmup.start_factor"),
    ({"name": "cosine", "warmup": {"shape": "cubic"}}, None, "schedule.warmup.shape"),
    ({"name": "cosine", "warmup": {"stepz": 3}}, None, "schedule.warmup.stepz"),
    ({"name": "onecycle", "pct_start": 0.0}, None, "schedule.pct_start"),
    ({"name": "onecycle", "pct_start": 1.0}, 100, "schedule.pct_start"),
    ({"name": "onecycle", "pct_start": 1.5}, None, "schedule.pct_start"),
    ({"name": "onecycle", "pct_start": 0.01}, 50, "schedule.pct_start"),  # < 1 step
    ({"name": "onecycle", "pct_start": 0.6, "three_phase": True}, None, "schedule.pct_start"),
    ({"name": "onecycle", "anneal": "cosine"}, None, "schedule.anneal"),
    ({"name": "onecycle", "cycle_momentum": "yes"}, None, "schedule.cycle_momentum"),
    ({"name": "onecycle", "max_momentum": 1.0}, None, "schedule.max_momentum"),
    ({"name": "cyclic", "base_momentum": -0.1}, None, "schedule.base_momentum"),
    ({"name": "cyclic", "base_momentum": 0.95}, None, "schedule.base_momentum"),  # > max
    ({"name": "cyclic", "mode": "sine"}, None, "schedule.mode"),
    ({"name": "cosine", "min_factor": -0.1}, None, "schedule.min_factor"),
    ({"name": "cosine", "min_factor": 1.5}, 100, "schedule.min_factor"),
    ({"name": "cyclic", "min_factor": 2.0}, None, "schedule.min_factor"),
    ({"name": "wsd", "min_factor": -1}, None, "schedule.min_factor"),
    ({"name": "cosine_restarts", "min_factor": 1.01}, None, "schedule.min_factor"),
    ({"name": "cosine_restarts", "period_mult": 0.5}, None, "schedule.period_mult"),
    ({"name": "linear", "end_factor": 1.5}, None, "schedule.end_factor"),
    ({"name": "cosine", "gamma": 0.5}, None, "schedule.gamma"),  # unknown key
    ({"name": "step", "total": 10}, None, "schedule.total"),  # unknown key
    ({"name": "plateau", "patience": -1}, None, "schedule.patience"),
    ({"name": "plateau", "factor": 1.0}, None, "schedule.factor"),
    ({"name": "plateau", "monitor": "val/f1"}, None, "schedule.monitor"),
    ({"name": "bold_driver", "decrease": 0.0}, None, "schedule.decrease"),
    ({"name": "nope"}, None, "schedule.name"),
    ({"name": "cosine", "unit": "batch"}, None, "schedule.unit"),
    ({"name": "cosine", "interval": "batch"}, None, "schedule.interval"),
    ({"name": "cosine", "frequency": 0}, None, "schedule.frequency"),
    ({"name": "cosine", "strict": "yes"}, None, "schedule.strict"),
    ({"name": "cosine", "total": 0}, None, "schedule.total"),
]


@pytest.mark.parametrize(("cfg", "total", "key"), INVALID)
def test_invalid_parameters_name_their_key(
    cfg: dict[str, Any], total: int | None, key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_schedule(cfg, total)
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}: ")


def test_every_shipped_config_validates() -> None:
    from omegaconf import OmegaConf

    from conftest import CONF

    for path in sorted((CONF / "schedule").glob("*.yaml")):
        cfg: Any = OmegaConf.to_container(OmegaConf.load(path))
        assert isinstance(cfg, dict)
        build_schedule(cfg, None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            build_schedule(cfg, 400, LR, steps_per_epoch=40)


def test_unit_epoch_converts_every_duration() -> None:
    cfg = {"name": "step", "unit": "epoch", "step_size": 2, "gamma": 0.5}
    schedule = build_schedule(cfg, 100, steps_per_epoch=10)
    assert [schedule.lr_at(t) for t in (0, 19, 20, 39, 40)] == [1, 1, 0.5, 0.5, 0.25]
    multistep = build_schedule(
        {"name": "multistep", "unit": "epoch", "milestones": [1, 2.5]}, 100, steps_per_epoch=10
    )
    assert multistep.milestones == [10, 25]  # type: ignore[attr-defined]
    warm = build_schedule(
        {"name": "cosine", "unit": "epoch", "total": 8, "warmup": {"steps": 1}},
        90,
        steps_per_epoch=10,
    )
    assert isinstance(warm, Warmup) and warm.steps == 10 and warm.length == 90
    half = {"name": "step", "unit": "epoch", "step_size": 0.5}
    build_schedule(half, None)  # fractional epochs validate before the data is known
    assert build_schedule(half, 100, steps_per_epoch=10).step_size == 5  # type: ignore[attr-defined]


def test_unit_epoch_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as err:  # rounds to 0 steps
        build_schedule(
            {"name": "step", "unit": "epoch", "step_size": 0.01}, 100, steps_per_epoch=10
        )
    assert err.value.key == "schedule.step_size"
    assert "10 steps per epoch" in str(err.value)
    with pytest.raises(ConfigError) as err:  # no steps per epoch to convert with
        build_schedule({"name": "step", "unit": "epoch"}, 100)
    assert err.value.key == "schedule.unit"
    with pytest.raises(ConfigError) as err:
        build_schedule({"name": "cosine", "unit": "epoch", "warmup": {"steps": 3}}, 30, 1.0, 10)
    assert err.value.key == "schedule.warmup.steps"


def test_length_mismatch_warns_or_fails_when_strict() -> None:
    with pytest.warns(UserWarning, match="lasts 50 steps but the run has 100"):
        build_schedule({"name": "cosine", "total": 50}, 100)
    with pytest.raises(ConfigError) as err:
        build_schedule({"name": "cosine", "total": 50, "strict": True}, 100)
    assert err.value.key == "schedule.total"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_schedule({"name": "cosine", "strict": True, "warmup": {"steps": 10}}, 100)
        build_schedule({"name": "cosine", "total": 90, "warmup": {"steps": 10}}, 100)


# ----------------------------------------------------------------------- interval and state


@pytest.mark.parametrize("name", ["cosine", "onecycle", "cyclic"])
def test_interval_epoch_holds_the_epoch_start_value(name: str) -> None:
    per_epoch, epochs = 7, 6
    schedule = build(name, total=per_epoch * epochs) if name != "cyclic" else build(name)
    opt = make_optimizer("adam")
    scheduler = ScheduledLR(opt, schedule)
    for epoch in range(epochs):
        start = epoch * per_epoch
        for _ in range(per_epoch):
            assert opt.param_groups[0]["lr"] == LR * schedule.lr_at(start)
            if schedule.cycles_momentum:
                assert opt.param_groups[0]["betas"][0] == schedule.momentum_at(start)
            opt.step()
        scheduler.step()  # Lightning's interval=epoch: once, after the epoch's last update
    assert scheduler.optimizer_steps == per_epoch * epochs


def _drive(
    scheduler: ScheduledLR, opt: torch.optim.Optimizer, script: Sequence[tuple[int, float | None]]
) -> list[tuple[float, float | None]]:
    """Run (steps, then an optional val/loss) chunks; return (lr, momentum) after each."""
    out: list[tuple[float, float | None]] = []
    for steps, loss in script:
        for _ in range(steps):
            opt.step()
            scheduler.step()
        if loss is not None:
            scheduler.observe({"val/loss": loss})
        group = opt.param_groups[0]
        out.append((group["lr"], group.get("momentum")))
    return out


STATE_CASES = [
    ("plateau", {"patience": 1, "factor": 0.5, "cooldown": 1}, 0),
    ("bold_driver", {"increase": 1.2, "decrease": 0.5}, 0),
    ("adaptive_step", {"step_size": 6, "min_period": 2}, 5),
    ("onecycle", {}, 4),
]


@pytest.mark.parametrize(("name", "params", "warm"), STATE_CASES)
def test_state_round_trips_through_torch_save(name: str, params: dict[str, Any], warm: int) -> None:
    cfg = {"name": name, "warmup": {"steps": warm}, **params}
    first = [(5, 1.0), (5, 0.9), (5, 0.95), (5, 0.97), (3, 0.99)]
    rest = [(4, 0.5), (4, 0.6), (4, 0.7), (4, 0.4), (4, None)]

    def fresh() -> tuple[torch.optim.Optimizer, ScheduledLR]:
        opt = make_optimizer("sgd", momentum=0.9)
        return opt, ScheduledLR(opt, build_schedule(cfg, 60, LR))

    opt, scheduler = fresh()
    _drive(scheduler, opt, first)
    buffer = io.BytesIO()
    torch.save({"sched": scheduler.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    opt2, scheduler2 = fresh()
    opt2.load_state_dict(saved["opt"])
    scheduler2.load_state_dict(saved["sched"])
    assert scheduler2.optimizer_steps == scheduler.optimizer_steps == 23
    assert scheduler2.schedule.state_dict() == scheduler.schedule.state_dict()
    if scheduler.schedule.metric_driven:
        assert scheduler.schedule.state_dict()["factor"] != 1.0  # something to restore
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert _drive(scheduler2, opt2, rest) == _drive(scheduler, opt, rest)


# ------------------------------------------------------------------------- Lightning trace


class _Memory(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> str:
        return "0"

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        assert step is not None
        self.points.append((step, dict(metrics)))


class _Tiny(pl.LightningModule):
    def __init__(self, schedule: Schedule, optimizer: str) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.schedule, self.optimizer_name = schedule, optimizer

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> Any:
        if self.optimizer_name == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(self.parameters(), lr=LR)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=LR)
        scheduler = ScheduledLR(opt, self.schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


@pytest.mark.parametrize(
    ("name", "optimizer"), [("onecycle", "adam"), ("cyclic", "sgd"), ("cosine", "sgd")]
)
def test_lrtrace_logs_momentum_at_the_lr_step(name: str, optimizer: str, tmp_path: Any) -> None:
    steps = 24
    schedule = build(name, total=steps) if name != "cyclic" else build(name, step_size_up=5)
    logger = _Memory()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(steps, 2)))
    trainer = pl.Trainer(
        max_epochs=1,
        logger=logger,
        callbacks=[LRTrace()],
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Tiny(schedule, optimizer), data)
    trace = [(step, m) for step, m in logger.points if "lr" in m]
    assert [step for step, _ in trace] == list(range(steps))
    for step, metrics in trace:
        assert metrics["lr"] == LR * schedule.lr_at(step)
        if schedule.cycles_momentum:
            assert metrics["momentum"] == schedule.momentum_at(step)
        else:
            assert "momentum" not in metrics


def test_lrtrace_without_scheduledlr_logs_no_momentum() -> None:
    opt = make_optimizer("sgd", momentum=0.9)
    logger = _Memory()
    trainer = SimpleNamespace(logger=logger, global_rank=0, global_step=3, lr_scheduler_configs=[])
    LRTrace().on_before_optimizer_step(trainer, None, opt)  # type: ignore[arg-type]
    assert logger.points == [(3, {"lr": LR})]
