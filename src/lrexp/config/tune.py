"""The LR finder's settings (``conf/tune/lr_find.yaml``) and the ``optimizer.lr=auto`` marker.

A leaf module (no torch, no Lightning): :mod:`lrexp.config.validate` checks ``tune.*`` with it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from lrexp.errors import ConfigError

#: ``optimizer.lr`` value that asks for the LR finder's suggestion.
AUTO = "auto"
MODES = ("exponential", "linear")


@dataclass(frozen=True)
class LRFindSettings:
    """``conf/tune/lr_find.yaml``; the defaults apply to ``optimizer.lr=auto`` without it."""

    min_lr: float = 1e-6
    max_lr: float = 1.0
    num_training: int = 100
    mode: str = "exponential"
    early_stop_threshold: float | None = 4.0
    skip_begin: int = 10
    skip_end: int = 1
    train_after: bool = False


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    return float(value)


def _count(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def settings(cfg: DictConfig) -> LRFindSettings:
    """The finder settings of ``cfg.tune`` (defaults when no tune option is picked).

    Raises :class:`ConfigError` naming the ``tune.<key>`` that is invalid.
    """
    node = cfg.get("tune")
    if node is None:
        return LRFindSettings()
    raw: dict[str, Any] = OmegaConf.to_container(node, resolve=True)  # type: ignore[assignment]
    name = raw.pop("name", "lr_find")
    if name != "lr_find":
        raise ConfigError("tune.name", f"must be lr_find, got {name!r}")
    known = {f.name for f in fields(LRFindSettings)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"tune.{key}", f"unknown key; allowed: {', '.join(sorted(known))}")
    found = LRFindSettings(**raw)
    min_lr = _number(found.min_lr, "tune.min_lr")
    max_lr = _number(found.max_lr, "tune.max_lr")
    if min_lr <= 0:
        raise ConfigError("tune.min_lr", f"must be > 0, got {min_lr!r}")
    if max_lr <= min_lr:
        raise ConfigError("tune.max_lr", f"must be greater than tune.min_lr ({min_lr:g})")
    if found.mode not in MODES:
        raise ConfigError("tune.mode", f"must be one of {', '.join(MODES)}, got {found.mode!r}")
    threshold = found.early_stop_threshold
    if threshold is not None and not _number(threshold, "tune.early_stop_threshold") > 1:
        raise ConfigError("tune.early_stop_threshold", f"must be > 1 or null, got {threshold!r}")
    skip_begin = _count(found.skip_begin, "tune.skip_begin", 0)
    skip_end = _count(found.skip_end, "tune.skip_end", 1)
    _count(found.num_training, "tune.num_training", skip_begin + skip_end + 2)
    if not isinstance(found.train_after, bool):
        raise ConfigError("tune.train_after", f"must be true or false, got {found.train_after!r}")
    return LRFindSettings(**{**raw, "min_lr": min_lr, "max_lr": max_lr})


def with_lr(cfg: DictConfig, lr: float) -> DictConfig:
    """A copy of ``cfg`` with ``optimizer.lr = lr`` (interpolations kept, ``cfg`` untouched)."""
    copied = copy.deepcopy(cfg)
    with open_dict(copied):
        copied.optimizer.lr = float(lr)
    return copied


def with_found_lr(cfg: DictConfig, lr: float) -> DictConfig:
    """``cfg`` to train at the finder's suggestion ``lr``. The search ran at the run's own
    global batch (batch size, accumulation), so ``optimizer.scale_lr`` is set to ``none``: the
    suggestion is not rescaled."""
    copied = with_lr(cfg, lr)
    with open_dict(copied):
        copied.optimizer.scale_lr = "none"
    return copied


def finder_run_name(cfg: DictConfig) -> str:
    """``lr_find-<optimizer>-<model>-<dataset>-s<seed>``."""
    parts = ("lr_find", cfg.optimizer.name, cfg.model.name, cfg.dataset.name)
    return "-".join(str(p) for p in parts) + f"-s{cfg.seed}"
