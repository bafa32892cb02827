"""Optimizer factory: ``conf/optimizer/<name>.yaml`` to a torch optimizer with param groups."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import schedulefree
import torch
from torch import nn

from lrexp.errors import ConfigError, named_config_error

#: name -> (torch class, fixed keyword arguments that define the variant)
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"nesterov": False}),
    "nesterov": (torch.optim.SGD, {"nesterov": True}),
    "adam": (torch.optim.Adam, {}),
    "amsgrad": (torch.optim.Adam, {"amsgrad": True}),
    "adamw": (torch.optim.AdamW, {}),
    "adamax": (torch.optim.Adamax, {}),
    "nadam": (torch.optim.NAdam, {}),
    "radam": (torch.optim.RAdam, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adagrad": (torch.optim.Adagrad, {}),
    "adadelta": (torch.optim.Adadelta, {}),
    "sf_adamw": (schedulefree.AdamWScheduleFree, {}),
    "sf_sgd": (schedulefree.SGDScheduleFree, {}),
}
#: Schedule-free optimizers (Defazio et al. 2024): they average iterates instead of decaying
#: the LR, need train()/eval() switching, and only make sense with a constant schedule.
SCHEDULE_FREE = ("sf_adamw", "sf_sgd")


def scaled_lr(lr: float, rule: str, global_batch: int, reference_batch: int) -> float:
    """``lr`` scaled for a global batch of ``global_batch`` examples: linear (Goyal et al.)
    multiplies by global/reference, sqrt by its square root, none leaves it."""
    if rule not in SCALE_RULES:
        raise ConfigError(
            "optimizer.scale_lr", f"must be one of {', '.join(SCALE_RULES)}, got {rule!r}"
        )
    if (
        isinstance(reference_batch, bool)
        or not isinstance(reference_batch, int)
        or reference_batch < 1
    ):
        raise ConfigError(
            "optimizer.reference_batch_size", f"must be an integer >= 1, got {reference_batch!r}"
        )
    ratio = global_batch / reference_batch
    return lr * {"none": 1.0, "linear": ratio, "sqrt": ratio**0.5}[rule]


def is_schedule_free(optimizer: torch.optim.Optimizer) -> bool:
    return hasattr(optimizer, "train") and hasattr(optimizer, "eval") and "k" in optimizer.defaults


def schedule_free_lr(group: Mapping[str, Any]) -> float:
    """The LR a schedule-free optimizer's next update uses: lr times its own linear warmup."""
    warmup = int(group.get("warmup_steps", 0))
    step = int(group.get("k", 0))
    return float(group["lr"]) * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)


#: Keys handled by lrexp rather than passed to the torch class.
LREXP_KEYS = (
    "name",
    "lr",
    "decay_norm_and_bias",
    "group_lr_scale",
    "scale_lr",
    "reference_batch_size",
)
SCALE_RULES = ("none", "linear", "sqrt")


def check_lr(value: Any) -> float:
    """The base LR as a positive float, or a ConfigError naming ``optimizer.lr``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError("optimizer.lr", f"must be a number > 0, got {value!r}")
    return float(value)


def optimizer_kwargs(cfg: Mapping[str, Any]) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """Resolve the torch class and its keyword arguments, rejecting unknown keys."""
    name = cfg.get("name")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ConfigError("optimizer.name", f"must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    cls, fixed = OPTIMIZERS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params", "lr"}
    kwargs = {k: v for k, v in cfg.items() if k not in LREXP_KEYS}
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"optimizer.{key}",
                f"unknown key for {name}; allowed: {', '.join(sorted(accepted))}",
            )
    kwargs.update(fixed)
    return cls, kwargs


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    decay_norm_and_bias: bool,
    lr_scale: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Split the parameters into named groups.

    ``lr_scale`` maps a regular expression over parameter names (``net.head.0.weight``) to an
    LR multiplier; the first matching pattern wins and names the group. With weight decay,
    biases and norm weights (1-D parameters) go to ``*no_decay`` groups unless
    ``decay_norm_and_bias``. Without any split there is one group, ``all``.
    """
    split_decay = weight_decay != 0 and not decay_norm_and_bias
    groups: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        pattern = next((p for p in lr_scale or {} if re.search(p, name)), None)
        parts = [pattern] if pattern is not None else []
        if split_decay:
            parts.append("decay" if param.ndim > 1 else "no_decay")
        key = "/".join(parts) or "all"
        group = groups.setdefault(key, {"params": [], "name": key})
        group["params"].append(param)
        if pattern is not None:
            group["lr"] = lr * float(lr_scale[pattern])  # type: ignore[index]
        if split_decay and param.ndim <= 1:
            group["weight_decay"] = 0.0
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the optimizer named ``cfg['name']`` at base LR ``cfg['lr']``."""
    lr = check_lr(cfg.get("lr"))
    cls, kwargs = optimizer_kwargs(cfg)
    lr_scale = dict(cfg.get("group_lr_scale") or {})
    for pattern, scale in lr_scale.items():
        if not isinstance(scale, int | float) or isinstance(scale, bool) or scale <= 0:
            raise ConfigError(f"optimizer.group_lr_scale.{pattern}", f"must be > 0, got {scale!r}")
    groups = param_groups(
        model,
        lr,
        float(kwargs.get("weight_decay", 0.0)),
        bool(cfg.get("decay_norm_and_bias", False)),
        lr_scale,
    )
    try:
        return cls(groups, lr=lr, **kwargs)  # type: ignore[call-arg]
    except (TypeError, ValueError) as err:
        raise named_config_error("optimizer", kwargs, err, f"optimizer.{cfg['name']}") from None
