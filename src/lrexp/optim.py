"""Optimizer factory: any ``torch.optim.Optimizer`` named by ``_target_`` (lrexp's presets in
``conf/optimizer/`` are such nodes), built on lrexp's parameter groups: no weight decay on
biases and norm weights, and per-group LR multipliers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lrexp.errors import ConfigError, named_config_error
from lrexp.targets import accepted, arguments_of, target_of

#: Keys handled by lrexp rather than passed to the optimizer class.
LREXP_KEYS = (
    "name",
    "lr",
    "decay_norm_and_bias",
    "group_lr_scale",
    "scale_lr",
    "reference_batch_size",
)
SCALE_RULES = ("none", "linear", "sqrt")


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


def check_lr(value: Any) -> float:
    """The base LR as a positive float, or a ConfigError naming ``optimizer.lr``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError("optimizer.lr", f"must be a number > 0, got {value!r}")
    return float(value)


def schedule_free_class(cls: type) -> bool:
    """Schedule-free optimizers (Defazio et al. 2024, the ``schedulefree`` package) average
    iterates instead of decaying the LR and switch with ``train()``/``eval()``: they only make
    sense with a constant schedule."""
    return callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None))


def optimizer_kwargs(cfg: Mapping[str, Any]) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The optimizer class ``cfg['_target_']`` names and its keyword arguments: every key but
    lrexp's (:data:`LREXP_KEYS`) and Hydra's; a key the class does not take is refused."""
    cls = target_of(cfg, "optimizer")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(
            "optimizer._target_", f"{cfg.get('_target_')} is not a torch.optim.Optimizer class"
        )
    kwargs = arguments_of(cfg, LREXP_KEYS)
    names, extra = accepted(cls)
    allowed = names - {"self", "params", "lr"}
    for key in kwargs:
        if key not in allowed and not extra:
            raise ConfigError(
                f"optimizer.{key}",
                f"unknown key for {cls.__qualname__}; allowed: {', '.join(sorted(allowed))}",
            )
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
    """Build the optimizer ``cfg['_target_']`` names at base LR ``cfg['lr']``."""
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
        raise named_config_error("optimizer", kwargs, err, "optimizer._target_") from None
