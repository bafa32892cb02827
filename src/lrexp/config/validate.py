"""Configuration checks that run before any run is opened, and for lrexp's own data modules
before any data is loaded.

Besides each key's own rules, the model is built on the data's input shape (lrexp's tensor
data module knows it without loading; another data module is set up once, see
:mod:`lrexp.data.describe`), run on two examples to check it gives one output per class, and
the optimizer is built on its parameters: a value only torch or the model can judge
(``betas``, ``chunk``) is then reported as one line naming the key instead of failing an
open MLflow run.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lrexp.averaging import check_averaging
from lrexp.config.forking import forked, resolve_fork
from lrexp.config.parts import TENSOR_DATA, data_info, label
from lrexp.config.planning import planned_steps
from lrexp.config.tune import AUTO
from lrexp.config.tune import settings as lr_find_settings
from lrexp.data.describe import DataInfo
from lrexp.data.sources import SIGNAL_DATASETS, SOURCE_SIZES, train_size
from lrexp.errors import ConfigError
from lrexp.optim import (
    build_optimizer,
    check_lr,
    optimizer_kwargs,
    scaled_lr,
    schedule_free_class,
)
from lrexp.parts import build_model, build_task, check_model_output, with_model_outputs
from lrexp.plan import check_devices, world_size
from lrexp.schedules import build_schedule
from lrexp.schedules.lr_scheduler import momentum_key
from lrexp.targets import check_arguments
from lrexp.tracking.server import check_server_access
from lrexp.tracking.uri import scheme_problem, sqlite_database, sqlite_problem


def _positive_int(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, f"must be an integer >= 1, got {value!r}")


def in_multirun() -> bool:
    try:
        return bool(HydraConfig.get().mode == RunMode.MULTIRUN)
    except ValueError:
        return False


def check_trainer_keys(trainer: dict[str, Any]) -> None:
    """Every ``trainer`` key is a ``pl.Trainer`` argument (lrexp applies accumulation and
    clipping itself, under the same names): a typo fails here, not as a traceback after the
    run was opened."""
    import pytorch_lightning as pl

    check_arguments(pl.Trainer, set(trainer), "trainer")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (naming the key) for the first invalid setting. A fork
    (``fork=cooldown``) is checked against its trunk, then checked as it will train."""
    fork = resolve_fork(cfg)
    validate_settled(forked(cfg, fork) if fork is not None else cfg)


def validate_settled(cfg: DictConfig) -> None:
    """:func:`validate` of a config whose fork is already applied (:func:`forked`)."""
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    check_finite(container)
    dataset, model, optimizer = container["dataset"], container["model"], container["optimizer"]
    if container["seed"] < 0:  # its type is checked by Hydra (lrexp.config.schemas), its range here
        raise ConfigError("seed", f"must be an integer >= 0, got {container['seed']!r}")
    for group in ("task", "dataset", "model", "optimizer"):
        label(container[group], group)  # each names its class (or says it does not)
    for key in ("batch_size", "eval_batch_size"):
        if dataset.get(key) is not None or dataset.get("_target_") == TENSOR_DATA:
            _positive_int(dataset.get(key), f"dataset.{key}")
    if model.get("channels_last") and dataset.get("name") in SIGNAL_DATASETS:
        raise ConfigError(
            "model.channels_last", f"needs images (C, H, W); {dataset['name']} holds 1-D signals"
        )
    if container.get("resume") not in (None, "auto"):
        raise ConfigError("resume", f"must be null or auto, got {container['resume']!r}")
    if container.get("resume_mode") not in (None, "extend"):
        raise ConfigError(
            "resume_mode", f"must be null or extend, got {container['resume_mode']!r}"
        )
    check_trainer_keys(container["trainer"])
    if container["threads"] is not None and container["threads"] < 1:
        raise ConfigError("threads", f"must be an integer >= 1, got {container['threads']!r}")
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
    if schedule_free_class(optimizer_class) and container["schedule"].get("name") != "constant":
        raise ConfigError(
            "schedule.name",
            f"{label(optimizer, 'optimizer')} is schedule-free and needs schedule=constant "
            f"(warmup allowed), got {container['schedule'].get('name')}",
        )
    check_kept_steps(container["callbacks"]["checkpoint"], total)
    if container.get("averaging") is not None:
        check_averaging(container["averaging"], total, bool(schedule_free_class(optimizer_class)))
    if schedule.cycles_momentum:
        momentum_key(inspect.signature(optimizer_class.__init__).parameters)
    trainer = container["trainer"]
    info = check_model_and_optimizer(
        data_info(dataset, world_size(trainer)), model, {**optimizer, "lr": lr}
    )
    build_task(container["task"], info, label(dataset, "dataset"))
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
    loss_every = logger.get("train_loss_every")
    if loss_every is not None and loss_every < 1:
        raise ConfigError(
            "logger.train_loss_every",
            f"must be an integer >= 1 (optimizer steps) or null (off), got {loss_every!r}",
        )
    if logger.get("enabled"):
        retry = logger.get("retry_seconds", 60)
        if retry < 0:
            raise ConfigError("logger.retry_seconds", f"must be a number >= 0, got {retry!r}")
        check_tracking_uri(str(logger.get("tracking_uri")))
        check_server_access(str(logger.get("tracking_uri")), str(logger.get("experiment_name")))


def check_kept_steps(checkpoint: dict[str, Any], total: int) -> None:
    """``keep_steps``: steps in 1..total; ``keep_every_n_steps``: null or >= 1 (their types
    are checked by Hydra, :mod:`lrexp.config.schemas`)."""
    key = "callbacks.checkpoint.keep_steps"
    for step in checkpoint.get("keep_steps") or []:
        if not 1 <= step <= total:
            raise ConfigError(key, f"must hold steps in 1..{total} (the run's steps), got {step!r}")
    every = checkpoint.get("keep_every_n_steps")
    if every is not None and every < 1:
        raise ConfigError(
            "callbacks.checkpoint.keep_every_n_steps", f"must be an integer >= 1, got {every!r}"
        )


def check_shards(dataset: dict[str, Any], world: int) -> None:
    """Every rank must get examples from every global training batch (each rank takes a
    strided shard of it); an empty shard would have no loss to back-propagate."""
    if world < 2:
        return
    if dataset.get("_target_") != TENSOR_DATA or dataset.get("name") not in SOURCE_SIZES:
        return  # a DataLoader is sharded by Lightning's DistributedSampler, which pads
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
    info: DataInfo, model: dict[str, Any], optimizer: dict[str, Any]
) -> DataInfo:
    """Build the model on the data's shape, check it gives one output per class, and build
    the optimizer on its parameters; the data's info, with the model's number of classes
    where the data module gives none."""
    net = build_model(model, info)
    info = with_model_outputs(net, info)
    check_model_output(net, info)
    build_optimizer(net, optimizer)
    return info


def check_tracking_uri(uri: str) -> None:
    """The URI must name a store MLflow 3 writes (not the retired file store), and a
    ``sqlite://`` store a database file that can be written (or created)."""
    wrong_scheme = scheme_problem(uri)
    if wrong_scheme:
        raise ConfigError("logger.tracking_uri", wrong_scheme)
    try:
        database = sqlite_database(uri)
    except ValueError as err:
        raise ConfigError("logger.tracking_uri", str(err)) from None
    problem = sqlite_problem(database) if database is not None else None
    if problem:
        raise ConfigError("logger.tracking_uri", problem)
