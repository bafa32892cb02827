"""Configuration checks that run before any data is loaded and before any run is opened.

Besides each key's own rules, the model is built on the dataset's input shape (known without
loading it, :data:`lrexp.plan.SOURCE_SHAPES`) and the optimizer on that model's parameters:
both are cheap, and a value only torch or the model can judge (``betas``, ``chunk``) is then
reported as one line naming the key instead of failing an open MLflow run.
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lrexp.data.sources import SIGNAL_DATASETS, SOURCES
from lrexp.errors import ConfigError
from lrexp.fork import resolve_fork
from lrexp.lr_find.settings import AUTO
from lrexp.lr_find.settings import settings as lr_find_settings
from lrexp.models import MODELS, build_model
from lrexp.optim import SCHEDULE_FREE, build_optimizer, check_lr, optimizer_kwargs, scaled_lr
from lrexp.plan import SOURCE_SHAPES, planned_steps, train_size
from lrexp.schedules import build_schedule
from lrexp.schedules.lr_scheduler import momentum_key
from lrexp.tracking.server import check_server_access
from lrexp.tracking.uri import sqlite_database, sqlite_problem


def _positive_int(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, f"must be an integer >= 1, got {value!r}")


def in_multirun() -> bool:
    try:
        return bool(HydraConfig.get().mode == RunMode.MULTIRUN)
    except ValueError:
        return False


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (naming the key) for the first invalid setting. A fork
    (``fork=cooldown``) is checked against its trunk, then checked as it will train."""
    fork = resolve_fork(cfg)
    if fork is not None:
        cfg = fork.apply(cfg)
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    check_finite(container)
    dataset, model, optimizer = container["dataset"], container["model"], container["optimizer"]
    seed = container.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", f"must be an integer >= 0, got {seed!r}")
    if not isinstance(dataset.get("name"), str) or dataset["name"] not in SOURCES:
        raise ConfigError("dataset.name", f"must be one of {', '.join(SOURCES)}")
    for key in ("batch_size", "eval_batch_size"):
        _positive_int(dataset.get(key), f"dataset.{key}")
    if not isinstance(model.get("name"), str) or model["name"] not in MODELS:
        raise ConfigError("model.name", f"must be one of {', '.join(MODELS)}")
    if model.get("channels_last") and dataset["name"] in SIGNAL_DATASETS:
        raise ConfigError(
            "model.channels_last", f"needs images (C, H, W); {dataset['name']} holds 1-D signals"
        )
    if container.get("resume") not in (None, "auto"):
        raise ConfigError("resume", f"must be null or auto, got {container['resume']!r}")
    if container.get("resume_mode") not in (None, "extend"):
        raise ConfigError(
            "resume_mode", f"must be null or extend, got {container['resume_mode']!r}"
        )
    threads = container.get("threads")
    if threads is not None:
        _positive_int(threads, "threads")
    if not isinstance(container.get("compile", False), bool):
        raise ConfigError("compile", f"must be true or false, got {container['compile']!r}")
    lr_value = optimizer.get("lr")
    lr = 1.0 if lr_value == AUTO else check_lr(lr_value)  # schedules only multiply it
    if lr_value == AUTO or container.get("tune") is not None:
        lr_find_settings(cfg)
    optimizer_class, _ = optimizer_kwargs(optimizer)
    scaled_lr(
        1.0,
        str(optimizer.get("scale_lr", "none")),
        1,
        optimizer.get("reference_batch_size", 1),
    )
    total, steps_per_epoch = planned_steps(cfg)
    with warnings.catch_warnings():  # length mismatches are reported once, when training
        warnings.simplefilter("ignore")
        schedule = build_schedule(container["schedule"], total, lr, steps_per_epoch)
    if optimizer.get("name") in SCHEDULE_FREE and container["schedule"].get("name") != "constant":
        raise ConfigError(
            "schedule.name",
            f"{optimizer['name']} is schedule-free and needs schedule=constant (warmup allowed), "
            f"got {container['schedule'].get('name')}",
        )
    check_kept_steps(container["callbacks"]["checkpoint"], total)
    if schedule.cycles_momentum:
        momentum_key(inspect.signature(optimizer_class.__init__).parameters)
    check_model_and_optimizer(dataset["name"], model, {**optimizer, "lr": lr})
    trainer = container["trainer"]
    _positive_int(trainer.get("accumulate_grad_batches"), "trainer.accumulate_grad_batches")
    max_steps = trainer.get("max_steps")
    if not isinstance(max_steps, int) or (max_steps < 1 and max_steps != -1):
        raise ConfigError("trainer.max_steps", f"must be -1 or an integer >= 1, got {max_steps!r}")
    if trainer.get("strategy") == "ddp" and in_multirun():
        raise ConfigError(
            "trainer.strategy",
            "ddp re-executes the command for each rank, which re-runs a Hydra multirun; "
            "use trainer.strategy=ddp_spawn under -m",
        )
    devices = trainer.get("devices")
    check_devices(devices)
    if trainer.get("accelerator") in ("gpu", "cuda"):
        available = torch.cuda.device_count()
        wanted = devices if isinstance(devices, int) and devices > 0 else 1
        if wanted > available:
            raise ConfigError(
                "trainer.devices", f"asks for {wanted} GPUs but {available} are available"
            )
    check_shards(dataset, world_size(trainer))
    logger = container["logger"]
    if logger.get("enabled"):
        retry = logger.get("retry_seconds", 60)
        if isinstance(retry, bool) or not isinstance(retry, int | float) or retry < 0:
            raise ConfigError("logger.retry_seconds", f"must be a number >= 0, got {retry!r}")
        check_tracking_uri(str(logger.get("tracking_uri")))
        check_server_access(str(logger.get("tracking_uri")), str(logger.get("experiment_name")))


def check_kept_steps(checkpoint: dict[str, Any], total: int) -> None:
    """``keep_steps``: a list of steps in 1..total; ``keep_every_n_steps``: null or >= 1."""
    steps = checkpoint.get("keep_steps") or []
    key = "callbacks.checkpoint.keep_steps"
    if not isinstance(steps, list):
        raise ConfigError(key, f"must be a list of optimizer steps, got {steps!r}")
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= total:
            raise ConfigError(key, f"must hold steps in 1..{total} (the run's steps), got {step!r}")
    every = checkpoint.get("keep_every_n_steps")
    if every is not None:
        _positive_int(every, "callbacks.checkpoint.keep_every_n_steps")


def check_devices(devices: Any) -> None:
    """Lightning's forms: a count >= 1, -1 or "auto" for all, a list of indices, "0,1"."""
    if devices == -1 or devices == "auto":
        return
    if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        return
    if isinstance(devices, str) and re.fullmatch(r"\d+(,\d+)*,?", devices.strip()):
        return
    if (
        isinstance(devices, list)
        and devices
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices)
    ):
        return
    raise ConfigError(
        "trainer.devices",
        f'must be a count >= 1, -1 or "auto", or a list of device indices, got {devices!r}',
    )


def world_size(trainer: dict[str, Any]) -> int:
    """Processes a data-parallel run starts: devices (-1: every GPU) times nodes."""
    devices = trainer.get("devices")
    if devices == -1 or devices == "auto":
        on_gpu = trainer.get("accelerator") in ("gpu", "cuda")
        devices = torch.cuda.device_count() if on_gpu else 1
    if isinstance(devices, str):  # Lightning also takes "2" or "0,1"
        devices = int(devices) if devices.isdigit() else len(devices.strip(",").split(","))
    per_node = devices if isinstance(devices, int) else len(devices or [0])
    return max(1, per_node) * int(trainer.get("num_nodes") or 1)


def check_shards(dataset: dict[str, Any], world: int) -> None:
    """Every rank must get examples from every global training batch (each rank takes a
    strided shard of it); an empty shard would have no loss to back-propagate."""
    if world < 2:
        return
    batch_size = int(dataset["batch_size"])
    last = train_size(dataset) % batch_size or batch_size
    if min(batch_size, last) < world:
        raise ConfigError(
            "dataset.batch_size",
            f"{batch_size} leaves a training batch of {min(batch_size, last)} example(s) for "
            f"{world} processes; pick a batch size whose last batch has at least {world}",
        )


def check_finite(node: Any, key: str = "") -> None:
    """Every number in the config is finite (``optimizer.lr=inf`` would train on NaN)."""
    if isinstance(node, dict):
        for name, value in node.items():
            check_finite(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_finite(value, f"{key}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(key, f"must be a finite number, got {node!r}")


def check_model_and_optimizer(
    dataset: str, model: dict[str, Any], optimizer: dict[str, Any]
) -> None:
    """Build the model on ``dataset``'s input shape and the optimizer on its parameters."""
    input_shape, num_classes = SOURCE_SHAPES[dataset]
    build_optimizer(build_model(model, input_shape, num_classes), optimizer)


def check_tracking_uri(uri: str) -> None:
    """A ``sqlite://`` store must be a database file that can be written (or created)."""
    try:
        database = sqlite_database(uri)
    except ValueError as err:
        raise ConfigError("logger.tracking_uri", str(err)) from None
    problem = sqlite_problem(database) if database is not None else None
    if problem:
        raise ConfigError("logger.tracking_uri", problem)
