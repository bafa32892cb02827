"""Data: real on-disk formats through torchvision, offline sets, splits, batching, augmentation."""

from __future__ import annotations

import os
import pickle
import struct
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from conftest import run_cli
from lrexp.data import TensorDataModule
from lrexp.data.augment import random_shift_flip
from lrexp.data.batching import IndexBatches
from lrexp.data.sources import SOURCES
from lrexp.errors import DataUnavailableError

# Any download attempt goes to a closed local port: fails at once and never reaches the network.
DEAD_PROXY = "http://127.0.0.1:9"
OFFLINE_ENV = {
    **{key: DEAD_PROXY for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
    "no_proxy": "",
    "NO_PROXY": "",
}


# --------------------------------------------------------------------------- real file formats


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file (big-endian dims, unsigned bytes), as MNIST ships them."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def write_mnist(root: Path, folder: str, n_train: int, n_test: int, seed: int = 0) -> dict:
    """``<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with random pixels."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
        arrays[split] = (images, labels)
    return arrays


def write_cifar10(root: Path, per_batch: int, n_test: int, seed: int = 0) -> dict:
    """``<root>/cifar-10-batches-py``: pickled dicts with rows of 3072 bytes (R, G, B planes)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        entry = {"batch_label": name, "labels": labels, "data": data, "filenames": ["x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(entry))
        batches[name] = (data, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    meta = {"label_names": [*names, "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return batches


def module(name: str, root: Path, **kwargs: Any) -> TensorDataModule:
    data = TensorDataModule(name=name, data_dir=str(root), download=False, **kwargs)
    data.setup("fit")
    return data


def assert_standardized(x: torch.Tensor) -> None:
    dims = [0, *range(2, x.ndim)]
    assert torch.allclose(x.mean(dim=dims), torch.zeros(x.shape[1]), atol=1e-4)
    assert torch.allclose(x.std(dim=dims), torch.ones(x.shape[1]), atol=1e-4)


def unnormalize(data: TensorDataModule, x: torch.Tensor, raw_train: torch.Tensor) -> torch.Tensor:
    """Invert the data module's normalization using the raw train split's statistics."""
    dims = [0, *range(2, raw_train.ndim)]
    return x * raw_train.std(dim=dims, keepdim=True) + raw_train.mean(dim=dims, keepdim=True)


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_formats_round_trip(tmp_path: Path, name: str, folder: str) -> None:
    arrays = write_mnist(tmp_path, folder, n_train=100, n_test=30)
    raw = SOURCES[name](tmp_path, False, True, 0)
    assert raw.x_train.shape == (100, 1, 28, 28) and raw.x_test.shape == (30, 1, 28, 28)
    assert raw.x_train.dtype == torch.float32 and raw.y_train.dtype == torch.int64
    # every pixel and label comes back exactly
    assert torch.equal(raw.x_train[:, 0], torch.from_numpy(arrays["train"][0]).float())
    assert torch.equal(raw.x_test[:, 0], torch.from_numpy(arrays["t10k"][0]).float())
    assert torch.equal(raw.y_train, torch.from_numpy(arrays["train"][1]).long())
    assert torch.equal(raw.y_test, torch.from_numpy(arrays["t10k"][1]).long())

    data = module(name, tmp_path, val_size=20, split_seed=3)
    assert (data.size("train"), data.size("val"), data.size("test")) == (80, 20, 30)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    x_train, y_train = data.splits["train"]
    assert_standardized(x_train)
    # the split is a seeded permutation of the raw train set; normalization is invertible
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    val, train = order[:20], order[20:]
    assert torch.equal(y_train, raw.y_train[train])
    assert torch.equal(data.splits["val"][1], raw.y_train[val])
    restored = unnormalize(data, data.splits["val"][0], raw.x_train[train])
    assert torch.allclose(restored, raw.x_train[val], atol=1e-3)
    restored = unnormalize(data, data.splits["test"][0], raw.x_train[train])
    assert torch.allclose(restored, raw.x_test, atol=1e-3)


def test_mnist_known_pixel_pattern(tmp_path: Path) -> None:
    """A hand-made image lands in (row, column) order, not transposed or flipped."""
    write_mnist(tmp_path, "MNIST", n_train=10, n_test=10)
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2, 5] = 255  # row 2, column 5
    image[20, :] = 7  # one full row
    images = np.stack([image] * 10)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte", images)
    raw = SOURCES["mnist"](tmp_path, False, True, 0)
    assert raw.x_test[0, 0, 2, 5] == 255 and raw.x_test[0, 0, 5, 2] == 0
    assert torch.all(raw.x_test[:, 0, 20] == 7) and raw.x_test[0].sum() == 255 + 7 * 28


def test_cifar10_format_round_trip_unverified(tmp_path: Path) -> None:
    batches = write_cifar10(tmp_path, per_batch=12, n_test=8)
    raw = SOURCES["cifar10"](tmp_path, False, False, 0)
    assert raw.x_train.shape == (60, 3, 32, 32) and raw.x_test.shape == (8, 3, 32, 32)
    train_rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    # a row holds the R, G and B planes one after another, each row-major
    expected = torch.from_numpy(train_rows.reshape(-1, 3, 32, 32)).float()
    assert torch.equal(raw.x_train, expected)
    assert raw.x_train[7, 1, 3, 4] == float(train_rows[7, 1024 + 3 * 32 + 4])
    labels = [label for i in range(1, 6) for label in batches[f"data_batch_{i}"][1]]
    assert raw.y_train.tolist() == labels
    assert raw.y_test.tolist() == batches["test_batch"][1]

    data = module("cifar10", tmp_path, verify=False, val_size=10, test_size=0)
    assert (data.size("train"), data.size("val"), data.size("test")) == (50, 10, 8)
    assert data.input_shape == (3, 32, 32)
    assert_standardized(data.splits["train"][0])  # per channel


def test_cifar10_checksums_are_checked_when_verify(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2, n_test=2)
    with pytest.raises(DataUnavailableError) as info:
        SOURCES["cifar10"](tmp_path, False, True, 0)
    message = str(info.value)
    assert "\n" not in message and "cifar10" in message and str(tmp_path) in message


# --------------------------------------------------------------------------- missing files


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_one_line_error(tmp_path: Path, name: str) -> None:
    data_dir = tmp_path / "nowhere"
    with pytest.raises(DataUnavailableError) as info:
        SOURCES[name](data_dir, False, True, 0)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"dataset {name}:")
    assert str(data_dir) in message and "dataset.download=false" in message


def assert_one_line_error(stderr: str, *parts: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("lrexp: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr[-3000:]
    for part in parts:
        assert part in errors[0]


def test_cli_missing_dataset_is_one_line(tmp_path: Path) -> None:
    args = ["dataset=mnist", "dataset.download=false", "trainer.max_steps=2", "logger=none"]
    result = run_cli(args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().startswith("lrexp: error:")
    assert_one_line_error(result.stderr, "dataset mnist", str(tmp_path / "data"))


def test_cli_failed_download_is_one_line(tmp_path: Path) -> None:
    """download=true without a network (a dead proxy stands in for one): one line, fast."""
    start = time.monotonic()
    args = ["dataset=cifar10", "trainer.max_steps=2"]  # with the default MLflow logger
    result = run_cli(args, cwd=tmp_path, timeout=120, env=OFFLINE_ENV)
    assert result.returncode == 2, result.stderr[-3000:]
    assert_one_line_error(result.stderr, "dataset cifar10", "download failed", str(tmp_path))
    assert time.monotonic() - start < 60
    assert not os.path.exists(tmp_path / "data" / "cifar-10-python.tar.gz")


def test_failed_download_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # urlopen keeps the dead proxy of its first call: give the process its own opener back
    monkeypatch.setattr(urllib.request, "_opener", None)
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(DataUnavailableError) as info:
        SOURCES["mnist"](tmp_path, True, True, 0)
    message = str(info.value)
    assert "\n" not in message and "download failed" in message and str(tmp_path) in message


# --------------------------------------------------------------------------- offline sets


def spec_of(cfg: DictConfig) -> dict[str, Any]:
    """The tensor data module's keyword arguments in ``cfg`` (its node without ``_target_``)."""
    node: dict[str, Any] = OmegaConf.to_container(cfg.dataset, resolve=True)  # type: ignore[assignment]
    return {k: v for k, v in node.items() if k != "_target_"}


@pytest.mark.parametrize(
    ("name", "sizes", "shape"),
    [("digits", (1257, 180, 360), (1, 8, 8)), ("mnist1d", (3500, 500, 1000), (1, 40))],
)
def test_offline_sets(
    make_cfg: Callable[..., DictConfig], name: str, sizes: tuple[int, int, int], shape: tuple
) -> None:
    spec = spec_of(make_cfg(f"dataset={name}"))
    data = TensorDataModule(**spec)
    data.setup("fit")
    assert (data.size("train"), data.size("val"), data.size("test")) == sizes
    assert data.input_shape == shape and data.num_classes == 10
    for split in ("train", "val", "test"):
        x, y = data.splits[split]
        assert x.shape[1:] == shape and x.dtype == torch.float32 and torch.isfinite(x).all()
        assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
    assert_standardized(data.splits["train"][0])

    again = TensorDataModule(**spec)
    again.setup("fit")
    for split in ("train", "val", "test"):
        for a, b in zip(data.splits[split], again.splits[split], strict=True):
            assert torch.equal(a, b)

    other = TensorDataModule(**{**spec, "split_seed": 1})
    other.setup("fit")
    assert not torch.equal(other.splits["val"][1], data.splits["val"][1])
    assert torch.equal(other.splits["test"][1], data.splits["test"][1])  # test split is fixed
    both = torch.cat([other.splits["train"][1], other.splits["val"][1]]).bincount()
    assert torch.equal(both, torch.cat([data.splits["train"][1], data.splits["val"][1]]).bincount())


def test_offline_sets_have_no_augmentation_but_images_do(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST", n_train=40, n_test=10)
    data = module("mnist", tmp_path, val_size=10, shift=2)
    assert data.train_dataloader().augment is not None
    assert data.val_dataloader().augment is None and data.test_dataloader().augment is None
    signal = TensorDataModule(name="mnist1d", val_size=500, test_size=0, shift=2)
    signal.setup("fit")
    assert signal.train_dataloader().augment is None  # shifts apply to images only


# --------------------------------------------------------------------------- batching


def batches(n: int = 103, **kwargs: Any) -> IndexBatches:
    x = torch.arange(n, dtype=torch.float32)[:, None]
    return IndexBatches(x, torch.arange(n), **kwargs)


def test_shuffle_is_seeded_per_epoch() -> None:
    a, b = (
        batches(batch_size=10, shuffle=True, seed=5),
        batches(batch_size=10, shuffle=True, seed=5),
    )
    assert torch.equal(a.order(3), b.order(3))
    assert not torch.equal(a.order(0), a.order(1))
    assert not torch.equal(a.order(0), batches(batch_size=10, shuffle=True, seed=6).order(0))
    for epoch in range(3):
        assert torch.equal(a.order(epoch).sort().values, torch.arange(103))
    assert torch.equal(batches(batch_size=10, shuffle=False).order(4), torch.arange(103))


@pytest.mark.parametrize("epoch", [0, 2])
def test_epoch_covers_every_index_once(epoch: int) -> None:
    loader = batches(batch_size=10, shuffle=True, seed=1, epoch=lambda: epoch)
    seen = list(loader)
    assert len(seen) == len(loader) == 11 and [len(y) for _, y in seen][-1] == 3
    ys = torch.cat([y for _, y in seen])
    assert torch.equal(ys, loader.order(epoch))  # batches follow the epoch's order
    assert torch.equal(torch.cat([x[:, 0] for x, _ in seen]).long(), ys)  # x and y stay paired
    assert torch.equal(list(loader)[4][1], seen[4][1])  # iterating again repeats the epoch


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_shard_every_global_batch(world: int) -> None:
    def shards(rank: int) -> list[torch.Tensor]:
        loader = batches(batch_size=12, shuffle=True, seed=7, rank=rank, world_size=world)
        return [y for _, y in loader]

    full = [y for _, y in batches(batch_size=12, shuffle=True, seed=7)]
    per_rank = [shards(rank) for rank in range(world)]
    assert all(len(s) == len(full) for s in per_rank)  # every rank takes the same step count
    for step, global_batch in enumerate(full):
        for rank in range(world):
            assert torch.equal(per_rank[rank][step], global_batch[rank::world])
        union = torch.cat([per_rank[rank][step] for rank in range(world)])
        assert torch.equal(union.sort().values, global_batch.sort().values)  # a partition


def test_resume_position_skips_seen_batches() -> None:
    full = [y for _, y in batches(batch_size=10, shuffle=True, seed=2, epoch=lambda: 3)]
    resumed = batches(batch_size=10, shuffle=True, seed=2, epoch=lambda: 3, start_at=(3, 4))
    rest = [y for _, y in resumed]
    assert len(rest) == len(full) - 4
    assert all(torch.equal(a, b) for a, b in zip(rest, full[4:], strict=True))
    assert len(list(resumed)) == len(full)  # only the first iteration resumes
    done = batches(batch_size=10, shuffle=True, seed=2, epoch=lambda: 3, start_at=(3, 11))
    assert torch.equal(next(iter(done))[1], done.order(4)[:10])  # epoch 3 done: go on with 4


# --------------------------------------------------------------------------- augmentation


def images(n: int = 32, channels: int = 2, size: int = 9) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(0)) + 1


def shifted(image: torch.Tensor, dy: int, dx: int, fill: torch.Tensor) -> torch.Tensor:
    """``image`` moved down by dy and right by dx, vacated pixels set to ``fill`` per channel."""
    out = fill.reshape(-1, 1, 1).expand_as(image).clone()
    h, w = image.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_shift_is_a_translation_with_fill() -> None:
    batch, fill = images(), torch.tensor([-0.5, -2.0])
    augment = random_shift_flip(2, False, fill)
    assert augment is not None
    out = augment(batch, torch.Generator().manual_seed(1))
    assert out.shape == batch.shape
    offsets = set()
    for image, result in zip(batch, out, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(result, shifted(image, dy, dx, fill))
        ]
        assert len(matches) == 1  # exactly one translation reproduces the output
        offsets.add(matches[0])
    assert len(offsets) > 5  # drawn per sample


def test_flip_and_seeding() -> None:
    batch = images()
    augment = random_shift_flip(0, True)
    assert augment is not None
    out = augment(batch, torch.Generator().manual_seed(1))
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch, strict=True)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # each one or the other
    assert 0 < sum(flipped) < len(batch)

    both = random_shift_flip(3, True, 0.0)
    assert both is not None
    first = both(batch, torch.Generator().manual_seed(9))
    assert torch.equal(first, both(batch, torch.Generator().manual_seed(9)))
    assert not torch.equal(first, both(batch, torch.Generator().manual_seed(10)))
    assert random_shift_flip(0, False) is None


def test_augmented_epochs_are_reproducible() -> None:
    x = images(40, 1, 6)
    augment = random_shift_flip(1, True)

    def epoch(e: int) -> list[torch.Tensor]:
        loader = IndexBatches(
            x, torch.arange(40), 8, shuffle=True, seed=4, epoch=lambda: e, augment=augment
        )
        return [xb for xb, _ in loader]

    assert all(torch.equal(a, b) for a, b in zip(epoch(1), epoch(1), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(epoch(1), epoch(2), strict=True))


def test_digits_read_without_scikit_learn_equal_scikit_learns() -> None:
    from sklearn.datasets import load_digits

    from lrexp.data.sources import digits_arrays

    images, labels = digits_arrays()
    bunch = load_digits()
    assert images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)
