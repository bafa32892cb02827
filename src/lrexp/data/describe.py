"""What lrexp needs to know about any data module, and how it finds it out.

The contract a ``LightningDataModule`` fulfils to train under lrexp (``dataset._target_``):

* required: ``train_dataloader()`` with a length (batches per epoch) and ``val_dataloader()``,
  batches of ``(inputs, targets)``;
* ``input_shape`` and ``num_classes`` (class-index targets) or ``num_outputs`` (real-valued
  targets, shaped ``(N, num_outputs)``) attributes after ``setup("fit")``: the model is sized
  and checked with them (without ``input_shape`` the first training batch gives it; without
  either count the targets are class indices and the model's own output decides how many
  classes there are, :func:`lrexp.config.parts.with_model_outputs`), and the task checks the kind of
  targets (:mod:`lrexp.tasks`);
* optional ``planned_shape()`` and ``planned_train_batches()``: the same without loading any
  data (lrexp's :class:`~lrexp.data.TensorDataModule` has both, so a bad config costs nothing);
* optional ``order_digest()``: a digest of the first epoch's sample order, which proves that
  runs with the same seed see the same batches (paired comparisons);
* optional ``state_dict``/``load_state_dict`` (or a stateful training loader): where an epoch
  stands, so a resume from a checkpoint saved mid-epoch continues exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from lrexp.errors import ConfigError


@dataclass(frozen=True)
class DataInfo:
    """A data module as the planner and the model builder see it."""

    input_shape: tuple[int, ...]  #: one example, without the batch dimension
    #: classes, or real-valued outputs per example; None: the data module does not say, and
    #: the model's output decides (``outputs_from`` then becomes ``model``)
    num_outputs: int | None
    train_batches: int  #: training batches per epoch on one process of the run
    targets: str = "classes"  #: ``classes`` (class indices) or ``values`` (real values)
    outputs_from: str = "data"  #: who gave ``num_outputs``: the data module or the model

    @property
    def offered(self) -> dict[str, Any]:
        """What lrexp offers a model constructor by keyword (:mod:`lrexp.config.parts`): the output
        count only when it is known."""
        counts = {"num_classes": self.num_outputs, "num_outputs": self.num_outputs}
        return {"input_shape": self.input_shape, **(counts if self.num_outputs else {})}


def class_name(data: object) -> str:
    return type(data).__qualname__


def can_resume_mid_epoch(data: pl.LightningDataModule) -> bool:
    """Whether a resume can continue an epoch where it stopped: the data module saves its
    position (overrides ``load_state_dict``) or its training loader is stateful."""
    if type(data).load_state_dict is not pl.LightningDataModule.load_state_dict:
        return True
    loader = getattr(data, "_lrexp_train_loader", None)
    return (
        loader is not None and hasattr(loader, "state_dict") and hasattr(loader, "load_state_dict")
    )


def rank_batches(loader: Any, world_size: int) -> int:
    """Training batches per epoch on one of ``world_size`` processes.

    One process: ``len(loader)``. Data-parallel: Lightning gives each rank a
    ``DistributedSampler`` share, ceil(examples / world) (padded), batched as the loader
    batches (``drop_last`` kept).
    """
    try:
        batches = len(loader)
    except TypeError:
        raise ConfigError(
            "dataset",
            f"the training loader ({type(loader).__name__}) has no length; lrexp plans the "
            "schedule from the batches per epoch, so it needs a sized loader",
        ) from None
    if world_size == 1 or hasattr(loader, "planned_rank_batches"):
        return batches
    dataset, batch_size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
    try:
        examples = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        examples = None
    if examples is None or not batch_size:
        raise ConfigError(
            "dataset",
            "a data-parallel run needs a training DataLoader with a sized dataset and a "
            "batch_size, to count each process's batches",
        )
    per_rank = math.ceil(examples / world_size)
    drop_last = bool(getattr(loader, "drop_last", False))
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)


def describe(data: pl.LightningDataModule, world_size: int = 1, load: bool = False) -> DataInfo:
    """Shape, classes and batches per epoch of ``data``: without loading anything when it
    plans them itself (unless ``load``: set it up too), else after ``prepare_data`` and
    ``setup("fit")``."""
    planned_shape = getattr(data, "planned_shape", None)
    planned_batches = getattr(data, "planned_train_batches", None)
    targets = str(getattr(data, "target_kind", "classes"))
    if planned_shape is not None and planned_batches is not None:
        shape, outputs = planned_shape()
        if load:
            data.prepare_data()
            data.setup("fit")
        return DataInfo(tuple(shape), int(outputs), int(planned_batches()), targets)
    data.prepare_data()
    data.setup("fit")
    loader = data.train_dataloader()
    data._lrexp_train_loader = loader  # type: ignore[attr-defined]
    batches = rank_batches(loader, world_size)
    if batches < 1:
        raise ConfigError(
            "dataset", f"{class_name(data)}'s training loader is empty (0 batches per epoch)"
        )
    shape = getattr(data, "input_shape", None)
    if shape is None:
        first = next(iter(loader))
        inputs = first[0] if isinstance(first, list | tuple) else first
        if not isinstance(inputs, Tensor):
            raise ConfigError(
                "dataset",
                f"{class_name(data)} yields {type(first).__name__} batches; lrexp needs "
                "(inputs, targets) tensors, or an input_shape attribute",
            )
        shape = tuple(inputs.shape[1:])
    classes, outputs = getattr(data, "num_classes", None), getattr(data, "num_outputs", None)
    count, targets = (classes, "classes") if classes is not None else (outputs, "values")
    if classes is None and outputs is None:
        count, targets = None, "classes"  # the model's output will say how many
    elif isinstance(count, bool) or not isinstance(count, int) or count < 1:
        name = "num_classes" if classes is not None else "num_outputs"
        raise ConfigError(
            "dataset", f"{class_name(data)}.{name} must be an int >= 1, got {count!r}"
        )
    return DataInfo(tuple(int(s) for s in shape), count, batches, targets)


def has_test_split(data: pl.LightningDataModule) -> bool:
    """Whether the data module gives a test loader (the data contract asks only for the
    training and validation loaders)."""
    from pytorch_lightning.utilities.model_helpers import is_overridden

    return is_overridden("test_dataloader", data, parent=pl.LightningDataModule)
