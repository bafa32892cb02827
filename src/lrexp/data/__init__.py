"""Data modules: whole-dataset tensors with index batching (the fast default), what lrexp
needs of any other data module, and helpers for exact mid-epoch resume."""

from lrexp.data.describe import DataInfo, describe
from lrexp.data.module import DataSpec, TensorDataModule
from lrexp.data.resumable import ResumableSampler, TrainPosition
from lrexp.data.sources import SOURCES
from lrexp.data.text import TextDataModule

__all__ = [
    "SOURCES",
    "DataInfo",
    "DataSpec",
    "ResumableSampler",
    "TensorDataModule",
    "TextDataModule",
    "TrainPosition",
    "describe",
]
