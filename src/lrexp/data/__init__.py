"""Datasets as whole tensors with index batching."""

from lrexp.data.module import DataSpec, TensorDataModule
from lrexp.data.sources import SOURCES

__all__ = ["SOURCES", "DataSpec", "TensorDataModule"]
