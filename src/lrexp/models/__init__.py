"""Model registry: every model is sized from the data module's input shape and classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lrexp.errors import named_config_error
from lrexp.models.cnn import CNN
from lrexp.models.lstm import LSTM
from lrexp.models.mlp import MLP

MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN, "lstm": LSTM}


def build_model(cfg: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Instantiate ``cfg['name']`` with the remaining keys as keyword arguments."""
    params = {k: v for k, v in cfg.items() if k != "name"}
    try:
        return MODELS[cfg["name"]](input_shape, num_classes, **params)
    except (TypeError, ValueError) as err:
        raise named_config_error("model", params, err, f"model.{cfg['name']}") from None


__all__ = ["CNN", "LSTM", "MLP", "MODELS", "build_model"]
