"""Data modules: real on-disk formats, seeded splits and order, sharding, augmentation."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from lrexp.data import DataSpec, TensorDataModule
from lrexp.data.augment import random_shift_flip
from lrexp.data.batching import IndexBatches
from lrexp.errors import DataUnavailableError


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file as MNIST ships it (magic: 0, 0, dtype 0x08, ndim)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str, n_train: int = 60, n_test: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    images[0] = 0
    images[0, 3, 5] = 255  # a known pixel
    raw = root / folder / "raw"
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)
    return images


def write_cifar(root: Path, per_batch: int = 10) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8),
            "labels": list(rng.integers(0, 10, per_batch)),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [f"class{i}" for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def setup(name: str, root: Path, **spec: object) -> TensorDataModule:
    data = TensorDataModule(DataSpec(name=name, data_dir=str(root), download=False, **spec))  # type: ignore[arg-type]
    data.setup("fit")
    return data


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_formats_load_from_tiny_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    images = write_mnist(tmp_path, folder)
    data = setup(name, tmp_path, val_size=10)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (data.size("train"), data.size("val"), data.size("test")) == (50, 10, 20)
    x = torch.cat([data.splits["train"][0], data.splits["val"][0]])
    assert abs(float(data.splits["train"][0].mean())) < 1e-4
    assert float(data.splits["train"][0].std()) == pytest.approx(1.0, rel=1e-3)
    # the known image round-trips: exactly one pixel above the rest
    y = torch.cat([data.splits["train"][1], data.splits["val"][1]])
    assert sorted(y.tolist()) == sorted((np.arange(60) % 10).tolist())
    bright = [img for img in x if int((img > img.min() + 1e-3).sum()) == 1]
    assert len(bright) == 1 and bright[0][0, 3, 5] > 0
    assert images[0, 3, 5] == 255


def test_cifar10_loads_from_tiny_pickled_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    data = setup("cifar10", tmp_path, val_size=10, verify=False)
    assert data.input_shape == (3, 32, 32)
    assert (data.size("train"), data.size("val"), data.size("test")) == (40, 10, 10)
    channel_means = data.splits["train"][0].mean(dim=(0, 2, 3))
    assert torch.allclose(channel_means, torch.zeros(3), atol=1e-4)
    with pytest.raises(DataUnavailableError, match="cifar10"):
        setup("cifar10", tmp_path, val_size=10, verify=True)  # MD5s of the real files differ


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_give_one_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataUnavailableError) as caught:
        setup(name, tmp_path / "empty")
    message = str(caught.value)
    assert "\n" not in message and name in message and str(tmp_path / "empty") in message


def test_missing_files_from_the_cli(tmp_path: Path) -> None:
    result = run_cli(
        ["dataset=mnist", "dataset.download=false", "trainer.max_steps=2"], cwd=tmp_path
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("lrexp: error:")]
    assert len(errors) == 1 and "dataset mnist:" in errors[0] and str(tmp_path) in errors[0]
    assert "Traceback" not in result.stderr


def test_offline_datasets_sizes_shapes_and_fixed_splits(tmp_path: Path) -> None:
    digits = setup("digits", tmp_path, val_size=180, test_size=360)
    assert (digits.size("train"), digits.size("val"), digits.size("test")) == (1257, 180, 360)
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    again = setup("digits", tmp_path, val_size=180, test_size=360)
    for split in ("train", "val", "test"):
        assert torch.equal(digits.splits[split][0], again.splits[split][0])
    signals = setup("mnist1d", tmp_path, val_size=500)
    assert (signals.size("train"), signals.size("val"), signals.size("test")) == (3500, 500, 1000)
    assert signals.input_shape == (1, 40)
    assert digits.digest() == again.digest() != signals.digest()


def test_shuffling_is_seeded_per_epoch_and_complete() -> None:
    x, y = torch.arange(100.0)[:, None], torch.arange(100)
    batches = IndexBatches(x, y, 32, shuffle=True, seed=7)
    first, second = batches.order(0), batches.order(1)
    assert torch.equal(first, IndexBatches(x, y, 32, shuffle=True, seed=7).order(0))
    assert not torch.equal(first, second)
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(100)) and len(batches) == 4


def test_resume_position_skips_completed_batches() -> None:
    x, y = torch.arange(100.0)[:, None], torch.arange(100)
    full = [yb for _, yb in IndexBatches(x, y, 10, shuffle=True, seed=1, epoch=lambda: 3)]
    resumed = [yb for _, yb in IndexBatches(x, y, 10, shuffle=True, seed=1, start_at=(3, 4))]
    assert all(torch.equal(a, b) for a, b in zip(full[4:], resumed, strict=True))
    after_epoch = [yb for _, yb in IndexBatches(x, y, 10, shuffle=True, seed=1, start_at=(2, 10))]
    assert all(torch.equal(a, b) for a, b in zip(full, after_epoch, strict=True))


def test_ranks_shard_every_global_batch() -> None:
    x, y = torch.arange(64.0)[:, None], torch.arange(64)
    single = [yb for _, yb in IndexBatches(x, y, 16, shuffle=True, seed=3)]
    shards = [
        list(IndexBatches(x, y, 16, shuffle=True, seed=3, rank=r, world_size=2)) for r in (0, 1)
    ]
    for step, batch in enumerate(single):
        parts = [shards[r][step][1] for r in (0, 1)]
        assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
        assert torch.equal(parts[0], batch[0::2]) and torch.equal(parts[1], batch[1::2])


def test_augmentation_shifts_and_flips_reproducibly() -> None:
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 4, 4] = 1.0
    shift = random_shift_flip(2, flip=False)
    assert shift is not None
    moved = shift(image.repeat(16, 1, 1, 1), torch.Generator().manual_seed(0))
    assert moved.shape == (16, 1, 8, 8)
    assert torch.all(moved.sum(dim=(1, 2, 3)) == 1)  # the pixel moves by at most 2, stays inside
    rows, cols = torch.nonzero(moved[:, 0], as_tuple=True)[1:]
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)}) > 1
    again = shift(image.repeat(16, 1, 1, 1), torch.Generator().manual_seed(0))
    assert torch.equal(moved, again)
    flip = random_shift_flip(0, flip=True)
    assert flip is not None
    flipped = flip(image.repeat(32, 1, 1, 1), torch.Generator().manual_seed(1))
    columns = torch.nonzero(flipped[:, 0], as_tuple=True)[2]
    assert set(columns.tolist()) == {3, 4}  # x=4 mirrored to x=3 in about half the samples
    assert random_shift_flip(0, flip=False) is None
