"""Raw dataset readers: each returns float inputs shaped (N, C, ...) and int64 labels.

``digits`` and ``mnist1d`` work offline; the torchvision sets read their real on-disk formats
and download them only when ``download`` is true.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pickle
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lrexp.errors import ConfigError, DataUnavailableError


@dataclass
class RawData:
    """Train and test tensors before the validation split and normalization."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int


def _tensor(array: np.ndarray | Tensor, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(np.asarray(array)).to(dtype)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as ``(images (1797, 8, 8), labels)``, read from the file
    that ``sklearn.datasets.load_digits`` reads, without importing scikit-learn (a second of
    startup); ``tests/test_data.py`` checks both give the same arrays."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError("dataset digits: scikit-learn is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def load_digits(data_dir: Path, download: bool, verify: bool, test_size: int) -> RawData:
    """scikit-learn's bundled 8x8 digits (1797 images); a fixed seeded test split."""
    images, labels = digits_arrays()
    x = _tensor(images, torch.float32).unsqueeze(1)
    y = _tensor(labels, torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    test, train = order[:test_size], order[test_size:]
    return RawData(x[train], y[train], x[test], y[test], 10)


@functools.cache
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate MNIST-1D once per process (it takes seconds; the result is fixed by seed 42)."""
    from mnist1d.data import get_dataset_args, make_dataset

    states = random.getstate(), np.random.get_state()  # make_dataset reseeds both globally
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    arrays = (data["x"], data["y"], data["x_test"], data["y_test"])
    for array in arrays:
        array.setflags(write=False)
    return arrays


def load_mnist1d(data_dir: Path, download: bool, verify: bool, test_size: int) -> RawData:
    """MNIST-1D generated with the package's default arguments (4000 train / 1000 test)."""
    x, y, x_test, y_test = _mnist1d_arrays()  # shared and read-only: copy into tensors
    return RawData(
        torch.tensor(x, dtype=torch.float32).unsqueeze(1),
        torch.tensor(y, dtype=torch.int64),
        torch.tensor(x_test, dtype=torch.float32).unsqueeze(1),
        torch.tensor(y_test, dtype=torch.int64),
        10,
    )


def _one_line(err: BaseException, limit: int = 300) -> str:
    """``err``'s message with all whitespace runs (newlines included) collapsed, shortened."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _torchvision(name: str, data_dir: Path, download: bool, verify: bool) -> tuple[object, object]:
    from torchvision import datasets

    classes: dict[str, type] = {
        "mnist": datasets.MNIST,
        "fashion_mnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
    }
    cls = classes[name]
    if name == "cifar10" and not verify:

        class _UnverifiedCIFAR10(datasets.CIFAR10):
            """CIFAR-10 reader that checks the batch files exist but not their checksums."""

            def _check_integrity(self) -> bool:
                folder = Path(self.root) / self.base_folder
                files = [name for name, _ in self.train_list + self.test_list]
                return all((folder / file).is_file() for file in files)

            def _load_meta(self) -> None:
                path = Path(self.root) / self.base_folder / self.meta["filename"]
                with path.open("rb") as infile:
                    self.classes = pickle.load(infile, encoding="latin1")[self.meta["key"]]
                self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

        cls = _UnverifiedCIFAR10
    try:
        train = cls(str(data_dir), train=True, download=download)
        test = cls(str(data_dir), train=False, download=download)
    except Exception as err:
        how = "the download failed" if download else "dataset.download=false"
        raise DataUnavailableError(
            f"dataset {name}: no usable files under {data_dir} and {how} ({_one_line(err)}); "
            f"place the files there or run with network access"
        ) from None
    return train, test


def load_torchvision(name: str) -> Callable[[Path, bool, bool, int], RawData]:
    """Reader for a torchvision image dataset stored under ``data_dir``."""

    def load(data_dir: Path, download: bool, verify: bool, test_size: int) -> RawData:
        train, test = _torchvision(name, data_dir, download, verify)

        def images(split: object) -> Tensor:
            data = _tensor(split.data, torch.float32)  # type: ignore[attr-defined]
            return data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)

        def labels(split: object) -> Tensor:
            return _tensor(split.targets, torch.int64)  # type: ignore[attr-defined]

        return RawData(images(train), labels(train), images(test), labels(test), 10)

    return load


SOURCES: dict[str, Callable[[Path, bool, bool, int], RawData]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "mnist": load_torchvision("mnist"),
    "fashion_mnist": load_torchvision("fashion_mnist"),
    "cifar10": load_torchvision("cifar10"),
}
#: datasets of 1-D signals (C, L); every other source yields images (C, H, W)
SIGNAL_DATASETS = frozenset({"mnist1d"})


#: Examples in each source (train + held-out pool), known without loading it.
SOURCE_SIZES: dict[str, int] = {
    "digits": 1797,
    "mnist1d": 4000,
    "mnist": 60000,
    "fashion_mnist": 60000,
    "cifar10": 50000,
}
#: Input shape (C, ...) and number of classes of each source, known without loading it.
SOURCE_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "digits": ((1, 8, 8), 10),
    "mnist1d": ((1, 40), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
}
#: Sources whose ``test_size`` examples are taken out of ``SOURCE_SIZES`` (the others ignore it).
CARVES_TEST: frozenset[str] = frozenset({"digits"})


def _count(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def train_size(dataset: Mapping[str, Any]) -> int:
    """Training examples of a ``dataset`` config node, without loading the data."""
    name = dataset.get("name")
    if not isinstance(name, str) or name not in SOURCE_SIZES:
        raise ConfigError("dataset.name", f"must be one of {', '.join(SOURCE_SIZES)}")
    available = SOURCE_SIZES[name]
    val_size = _count(dataset.get("val_size", 0), "dataset.val_size", 0)
    test_size = 0
    if name in CARVES_TEST:
        test_size = _count(dataset.get("test_size", 0), "dataset.test_size", 0)
    size = available - test_size - val_size
    if size < 1:
        raise ConfigError(
            "dataset.val_size",
            f"{name} has {available} examples; val_size {val_size}"
            + (f" + test_size {test_size}" if name in CARVES_TEST else "")
            + " leaves none to train on",
        )
    return size
