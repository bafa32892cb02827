"""Tasks: what a run minimizes and measures. A task owns the loss, the metrics and the
objective's direction; the LightningModule (:mod:`lrexp.run.module`) only calls it.

``task=classification`` (the default): cross-entropy; ``loss`` and ``acc`` per split.
``task=regression``: mean squared error; ``loss`` and ``mse`` per split, and for validation and
test also ``rmse`` and ``r2`` (torchmetrics). ``task=language_model``: next-token
cross-entropy in nats per token, with bits per byte (or character) and perplexity. A task of
a user's own is a subclass named by ``_target_`` in ``conf/task/``, like any other part
(:mod:`lrexp.parts`).

Every run is tagged with its task's objective and the direction of each metric it logs
(:meth:`Task.tags`), so ``lrexp-compare`` and the search read the direction from the runs.
"""

from __future__ import annotations

import json
import math
from abc import abstractmethod
from collections.abc import Mapping
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanSquaredError, Metric, R2Score
from torchmetrics.classification import MulticlassAccuracy

from lrexp.errors import ConfigError
from lrexp.tags import MODES_TAG, OBJECTIVE_TAG, TEST_METRIC_TAG

#: what a data module's targets are: class indices, real values, or next tokens
CLASSES, VALUES, TOKENS = "classes", "values", "tokens"
#: each kind of target in words, and the task that takes it
TARGET_WORDS = {CLASSES: "class labels", VALUES: "real-valued targets", TOKENS: "token sequences"}
TASK_FOR = {CLASSES: "classification", VALUES: "regression", TOKENS: "language_model"}
#: a language model's bits per token, by token kind: per byte, per character
BITS_KEYS = {"byte": "bpb", "char": "bpc"}
EVAL_SPLITS = ("val", "test")


def metric_in(metrics: nn.ModuleDict, key: str) -> Metric:
    """The torchmetrics object stored under ``key``."""
    return cast(Metric, metrics[key])


class Task(nn.Module):
    """The loss, the per-split metrics and the objective of a kind of problem.

    Per step the module asks for :meth:`loss` and :meth:`step_sums` (device tensors summed over
    the epoch, no host sync); at an epoch's end :meth:`epoch_metrics` turns the summed (and
    process-reduced) values into the logged numbers. Validation and test outputs also go to
    :meth:`update`, the torchmetrics objects the task keeps.
    """

    #: the kind of targets the task needs (:data:`CLASSES` or :data:`VALUES`)
    targets: str
    #: the validation metric that chooses the best checkpoint and that a search optimizes
    objective: str
    #: ``max`` or ``min``: which way the objective is better
    mode: str
    #: the per-run number ``lrexp-compare`` tests by default
    test_metric: str

    @abstractmethod
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The training loss of a batch (a mean over its examples)."""

    @abstractmethod
    def step_sums(self, outputs: Tensor, targets: Tensor, loss: Tensor) -> Tensor:
        """Numbers to sum over an epoch for one batch; the last is the example count."""

    @abstractmethod
    def update(self, split: str, outputs: Tensor, targets: Tensor) -> None:
        """Feed a validation or test batch to the split's torchmetrics."""

    @abstractmethod
    def epoch_metrics(self, split: str, sums: Tensor) -> dict[str, float]:
        """The logged metrics of ``split`` (``split/name``) from the epoch's sums; resets the
        split's torchmetrics."""

    @abstractmethod
    def modes(self) -> dict[str, str]:
        """Every metric the task logs, with ``max`` or ``min`` (the better direction)."""

    def reset(self, split: str) -> None:
        """Forget what the split's torchmetrics have seen (after Lightning's sanity check)."""
        for name, module in self.named_modules():
            if isinstance(module, Metric) and name.rpartition(".")[2].startswith(f"{split}_"):
                module.reset()

    def check_targets(self, targets: str, data: str) -> None:
        """Refuse data whose targets are not the kind this task needs."""
        if targets != self.targets:
            task = TASK_FOR.get(self.targets, type(self).__name__.lower())
            wanted = TARGET_WORDS.get(self.targets, self.targets)
            given = TARGET_WORDS.get(targets, targets)
            raise ConfigError(
                "task",
                f"{task} needs {wanted}, but {data} gives {given}; use "
                f"task={TASK_FOR.get(targets, '...')} or a dataset with {wanted}",
            )

    def tags(self, extra_modes: Mapping[str, str] | None = None) -> dict[str, str]:
        """Run tags: the objective, the test metric and every metric's direction (with
        ``extra_modes``: metrics the run logs beside the task's, such as averaged losses)."""
        modes = {**self.modes(), **(extra_modes or {})}
        return {
            OBJECTIVE_TAG: f"{self.objective}:{self.mode}",
            TEST_METRIC_TAG: self.test_metric,
            MODES_TAG: json.dumps(modes, sort_keys=True),
        }


class Classification(Task):
    """Cross-entropy on logits; micro accuracy (torchmetrics for validation and test)."""

    targets, objective, mode, test_metric = CLASSES, "val/acc", "max", "test/acc"

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.accuracy = nn.ModuleDict(
            {
                f"{split}_acc": MulticlassAccuracy(
                    num_classes, average="micro", validate_args=False
                )
                for split in EVAL_SPLITS
            }
        )
        for key in self.accuracy:
            metric_in(self.accuracy, key).persistent(
                True
            )  # a mid-epoch checkpoint keeps the running state

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs, targets)

    def step_sums(self, outputs: Tensor, targets: Tensor, loss: Tensor) -> Tensor:
        # loss sum, correct predictions and examples (few small ops: this runs at every step)
        correct = (outputs.argmax(dim=-1) == targets).sum(dtype=loss.dtype)
        count = len(targets)
        return torch.stack((loss.detach() * count, correct, torch.full_like(correct, count)))

    def update(self, split: str, outputs: Tensor, targets: Tensor) -> None:
        metric_in(self.accuracy, f"{split}_acc").update(outputs, targets)

    def epoch_metrics(self, split: str, sums: Tensor) -> dict[str, float]:
        if split == "train":  # counted on the device in each step (cheaper than a metric)
            accuracy = sums[1] / sums[2]
        else:
            metric = metric_in(self.accuracy, f"{split}_acc")
            accuracy = metric.compute()
            metric.reset()
        return {f"{split}/loss": float(sums[0] / sums[2]), f"{split}/acc": float(accuracy)}

    def modes(self) -> dict[str, str]:
        return {
            **{f"{s}/loss": "min" for s in ("train", *EVAL_SPLITS)},
            **{f"{s}/acc": "max" for s in ("train", *EVAL_SPLITS)},
        }


class Regression(Task):
    """Mean squared error over every output; ``mse``, ``rmse`` and ``r2`` from torchmetrics
    for validation and test."""

    targets, objective, mode, test_metric = VALUES, "val/mse", "min", "test/mse"

    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.metrics = nn.ModuleDict()
        for split in EVAL_SPLITS:
            self.metrics[f"{split}_mse"] = MeanSquaredError(num_outputs=1)
            self.metrics[f"{split}_rmse"] = MeanSquaredError(squared=False)
            self.metrics[f"{split}_r2"] = R2Score(multioutput="uniform_average")
        for key in self.metrics:
            metric_in(self.metrics, key).persistent(True)
        self.num_outputs = num_outputs

    def _shaped(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return outputs.reshape(len(outputs), -1), targets.reshape(len(targets), -1)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(*self._shaped(outputs, targets))

    def step_sums(self, outputs: Tensor, targets: Tensor, loss: Tensor) -> Tensor:
        count = loss.new_tensor(float(len(targets)))
        return torch.stack((loss.detach() * count, count))

    def update(self, split: str, outputs: Tensor, targets: Tensor) -> None:
        out, target = self._shaped(outputs, targets)
        metric_in(self.metrics, f"{split}_mse").update(out.flatten(), target.flatten())
        metric_in(self.metrics, f"{split}_rmse").update(out.flatten(), target.flatten())
        if out.shape[1] == 1:  # R2Score takes one output as a flat vector
            out, target = out.squeeze(1), target.squeeze(1)
        metric_in(self.metrics, f"{split}_r2").update(out, target)

    def epoch_metrics(self, split: str, sums: Tensor) -> dict[str, float]:
        loss = float(sums[0] / sums[1])
        if split == "train":
            return {"train/loss": loss, "train/mse": loss}
        values = {f"{split}/loss": loss}
        for name in ("mse", "rmse", "r2"):
            metric = metric_in(self.metrics, f"{split}_{name}")
            values[f"{split}/{name}"] = float(metric.compute())
            metric.reset()
        return values

    def modes(self) -> dict[str, str]:
        modes = {f"{s}/{m}": "min" for s in ("train", *EVAL_SPLITS) for m in ("loss", "mse")}
        modes.update({f"{s}/rmse": "min" for s in EVAL_SPLITS})
        modes.update({f"{s}/r2": "max" for s in EVAL_SPLITS})
        modes.update({f"{s}/excess": "min" for s in ("train", "test")})
        return modes


class LanguageModel(Task):
    """Next-token cross-entropy over every position of a window, in nats per token; bits per
    token (``bpb``: per byte with byte tokens, ``bpc``: per character) and perplexity.

    The loss of a split is the mean over its tokens (every window has the same length), so a
    fixed set of validation windows gives the same number for the same weights in every run.
    """

    targets, objective, mode, test_metric = TOKENS, "val/loss", "min", "test/loss"

    def __init__(self, num_classes: int, unit: str = "byte") -> None:
        super().__init__()
        if unit not in BITS_KEYS:
            raise ConfigError("task.unit", f"must be one of {', '.join(BITS_KEYS)}, got {unit!r}")
        self.vocab_size = num_classes
        self.bits = BITS_KEYS[unit]

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs.flatten(0, -2), targets.flatten().long())

    def step_sums(self, outputs: Tensor, targets: Tensor, loss: Tensor) -> Tensor:
        count = loss.new_tensor(float(targets.numel()))
        return torch.stack((loss.detach() * count, count))

    def update(self, split: str, outputs: Tensor, targets: Tensor) -> None:
        """Nothing to add: every metric follows from the summed loss."""

    def epoch_metrics(self, split: str, sums: Tensor) -> dict[str, float]:
        loss = float(sums[0] / sums[1])
        return {
            f"{split}/loss": loss,
            f"{split}/{self.bits}": loss / math.log(2),
            f"{split}/ppl": math.exp(min(loss, 700.0)),
        }

    def modes(self) -> dict[str, str]:
        names = ("loss", self.bits, "ppl")
        return {f"{s}/{m}": "min" for s in ("train", *EVAL_SPLITS) for m in names}
