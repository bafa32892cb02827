"""The parts of a run built from their plain ``_target_`` nodes: model, data module, task.

lrexp's own parts and a user's come the same way: ``conf/model/mlp.yaml`` names
``lrexp.models.MLP`` as ``mypkg/conf/model/net.yaml`` names ``mypkg.Net``. The rules:

* every key but Hydra's (``_target_``, ``_partial_``, ...) is a constructor argument, except
  ``name``: lrexp's label for the part (run names, tags), passed on only to a constructor
  that takes a ``name`` argument (the tensor data module takes its source that way);
* lrexp offers what it knows of the data to the model by keyword: ``input_shape`` (one
  example's shape), and ``num_outputs`` (classes or real-valued outputs; also offered as
  ``num_classes``), each given when the constructor takes it by that name; a task is offered
  ``num_classes``/``num_outputs`` the same way;
* arguments arrive as plain Python (lists, dicts); a node with nested ``_target_`` nodes is
  built by Hydra's ``instantiate`` (``_convert_: all`` unless the node says otherwise);
  ``_partial_: true`` gives a ``functools.partial``;
* an import failure, a refused or missing argument, or a constructor error is one line
  naming the key (:class:`~lrexp.errors.ConfigError`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from lrexp.data.describe import DataInfo
from lrexp.errors import ConfigError, named_config_error
from lrexp.targets import accepted, arguments_of, check_arguments, offered_to, target_of
from lrexp.tasks import CLASSES, TOKENS, Task

#: lrexp's label key in the model, dataset and optimizer groups: passed on only to a
#: constructor that takes a ``name`` argument
LABEL = "name"


def build(node: Mapping[str, Any], group: str, **offered: Any) -> Any:
    """Build ``node`` (plain Python): its ``_target_`` called with its arguments and the
    ``offered`` values the target takes by name."""
    node = dict(node)
    target = target_of(node, group)
    names = {k: v for k, v in offered_to(target, offered).items() if k not in node}
    reserved = () if LABEL in accepted(target)[0] else (LABEL,)
    arguments = arguments_of(node, reserved)
    check_arguments(target, arguments, group, names)
    positional = list(node.get("_args_") or [])
    try:
        if not any(_has_target(v) for v in [*arguments.values(), *positional]):
            if node.get("_partial_"):
                return functools.partial(target, *positional, **arguments, **names)
            return target(*positional, **arguments, **names)
        spec = {k: v for k, v in node.items() if k not in reserved}
        spec.setdefault("_convert_", "all")
        return instantiate(spec, **names)
    except ConfigError:
        raise
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise named_config_error(group, arguments, cause, f"{group}._target_") from None
    except Exception as err:  # the constructor refused its arguments, whatever it raised
        refused = f"{getattr(target, '__qualname__', target)} raised {type(err).__name__}"
        raise named_config_error(group, arguments, err, group, prefix=f"{refused}: ") from None


def _has_target(value: Any) -> bool:
    """Whether ``value`` holds a nested ``_target_`` node (built by Hydra's instantiate)."""
    if isinstance(value, Mapping):
        return "_target_" in value or any(_has_target(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_target(v) for v in value)
    return False


def build_datamodule(node: Mapping[str, Any]) -> pl.LightningDataModule:
    """The data module ``node`` names; it must be a ``LightningDataModule``."""
    data = build(node, "dataset")
    if not isinstance(data, pl.LightningDataModule):
        raise ConfigError(
            "dataset._target_",
            f"{type(data).__qualname__} is not a pytorch_lightning.LightningDataModule",
        )
    return data


def build_model(node: Mapping[str, Any], info: DataInfo) -> nn.Module:
    """The model ``node`` names, offered the data's ``input_shape`` and output count."""
    model = build(node, "model", **info.offered)
    if isinstance(model, functools.partial):  # _partial_: true, completed with the data's sizes
        model = model()
    if not isinstance(model, nn.Module):
        raise ConfigError("model._target_", f"{type(model).__qualname__} is not a torch.nn.Module")
    return model


def with_model_outputs(model: nn.Module, info: DataInfo, data: Any = None) -> DataInfo:
    """``info`` with the number of classes when the data module gives none: the model's
    output width on two zero examples, checked against the labels of the first training
    batch (when ``data`` is given); ``info`` itself when the data module gave it."""
    if info.num_outputs is not None:
        return info
    output = output_on_zeros(model, info, "model")
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[1] < 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            "dataset",
            f"has neither num_classes nor num_outputs, and the model's outputs of shape {shape} "
            "for 2 examples give no number of classes (expected (2, classes)); give the data "
            "module a num_classes attribute",
        )
    classes = int(output.shape[1])
    loader = getattr(data, "_lrexp_train_loader", None)
    if loader is not None:
        first = next(iter(loader))
        labels = first[1] if isinstance(first, list | tuple) and len(first) > 1 else None
        if isinstance(labels, torch.Tensor) and labels.numel():
            low, high = int(labels.min()), int(labels.max())
            if labels.is_floating_point() or low < 0 or high >= classes:
                raise ConfigError(
                    "dataset",
                    f"has no num_classes, and the model's {classes} outputs do not fit the labels "
                    f"of its first training batch ({labels.dtype}, {low}..{high}): give the data "
                    "module a num_classes attribute",
                )
    return dataclasses.replace(info, num_outputs=classes, outputs_from="model")


def build_task(node: Mapping[str, Any], info: DataInfo, data_label: str) -> Task:
    """The task ``node`` names, offered the data's output count; it must accept the kind of
    targets the data has."""
    task = build(node, "task", num_classes=info.num_outputs, num_outputs=info.num_outputs)
    if not isinstance(task, Task):
        raise ConfigError("task._target_", f"{type(task).__qualname__} is not a lrexp.tasks.Task")
    task.check_targets(info.targets, data_label)
    return task


def output_on_zeros(model: nn.Module, info: DataInfo, group: str) -> Any:
    """``model``'s output on two zero examples of the data's shape (token ids for token
    data; in eval mode, no grad); a ConfigError naming ``group`` when it fails."""
    training = model.training
    model.eval()
    dtype = torch.long if info.targets == TOKENS else torch.float32
    try:
        with torch.no_grad():
            return model(torch.zeros((2, *info.input_shape), dtype=dtype))
    except Exception as err:
        message = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(
            group, f"fails on inputs of shape {tuple(info.input_shape)}: {message}"
        ) from None
    finally:
        model.train(training)


def check_model_output(model: nn.Module, info: DataInfo, group: str = "model") -> None:
    """Run ``model`` on two zero examples of the data's shape: ``num_outputs`` outputs each
    (one per class), or for token data one per token of the vocabulary at every position."""
    output = output_on_zeros(model, info, group)
    expected: tuple[int, ...] = (2, info.num_outputs or 0)
    what = {CLASSES: "classes", TOKENS: "tokens in its vocabulary"}.get(
        info.targets, "target values per example"
    )
    if info.targets == TOKENS:
        expected = (2, *info.input_shape, info.num_outputs or 0)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            group,
            f"gives outputs of shape {shape} for 2 examples, but the data has "
            f"{info.num_outputs} {what}: expected {expected}",
        )


def build_parts(
    model: Mapping[str, Any],
    task: Mapping[str, Any],
    data_label: str,
    info: DataInfo,
    data: pl.LightningDataModule,
) -> tuple[nn.Module, DataInfo, Task]:
    """The model for the data's shapes, the data's description completed with the model's
    output width when the data module gives no number of classes, and the task."""
    net = build_model(model, info)
    info = with_model_outputs(net, info, data)
    return net, info, build_task(task, info, data_label)
