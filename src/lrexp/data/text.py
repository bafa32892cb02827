"""Text for language models: a corpus as token tensors, served as next-token windows.

``dataset=text`` reads any text file or folder (``dataset.path``); without one it reads the
Python standard library's own source, which every machine with Python has (about 12 MB of
``.py`` files on CPython 3.11, its ``test`` packages left out), so the default language-model
run needs no download. Files are read in sorted order and split by file: every 50th file
(from the first) is validation, every 50th from the second is test, the rest is training; a
single file is split by position instead (the first 90 % training, then 5 % and 5 %, or the
shares given; with no test share the test reads the whole validation text, as nanoGPT's
final evaluation does). ``dataset=tinyshakespeare`` is nanoGPT's benchmark: one file,
fetched from ``dataset.url`` with ``dataset.download=true``, the first 90 % training.

Tokens are bytes (vocabulary 256, the default) or characters (``dataset.tokens=char``: the
sorted characters of the corpus). Training reads non-overlapping windows of ``block_size + 1``
tokens in a seeded order, so an epoch reads every training token once. Validation reads a
fixed set of ``val_windows`` windows spread evenly over the validation split, the same for
every run of a corpus (:meth:`TextDataModule.val_digest`), cheap enough to run often; the
final weights are validated once more on every window of the validation split (logged as
``val_full/loss``), and the test reads every window of the test split.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor

from lrexp.data.batching import IndexBatches, SplitBatches
from lrexp.data.resumable import TrainPosition
from lrexp.digests import tensors_digest
from lrexp.errors import ConfigError

#: what the offline default corpus leaves out: tests, installed packages, caches
STDLIB_SKIP = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test"})
TOKENS = ("byte", "char")
#: every SPLIT_EVERY-th file is validation, the next one test
SPLIT_EVERY = 50
#: a single file: the default shares of validation and test at its end
FILE_SHARES = (0.05, 0.05)
DOWNLOAD_SECONDS = 60
TARGET_KIND = "tokens"


@dataclass(frozen=True)
class Corpus:
    """A corpus split into token tensors, with what identifies it."""

    splits: dict[str, Tensor]  #: train, val, test: 1-D token tensors
    vocab: list[str] | None  #: char tokens: the characters, by id; None: bytes
    source: str  #: where it was read
    digest: str  #: SHA-256 (16 hex digits) of the corpus's bytes, in reading order

    @property
    def vocab_size(self) -> int:
        return 256 if self.vocab is None else len(self.vocab)


def stdlib_files() -> tuple[Path, list[Path]]:
    """The standard library's folder and its ``.py`` files (tests and packages left out)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [
        p
        for p in root.rglob("*.py")
        if not STDLIB_SKIP & set(p.relative_to(root).parts) and "__pycache__" not in p.parts
    ]
    return root, sorted(files, key=lambda p: p.relative_to(root).as_posix())


def corpus_files(path: str | None) -> tuple[str, list[Path]]:
    """(a description of the source, its files in reading order)."""
    if path is None:
        root, files = stdlib_files()
        return f"Python {platform.python_version()} standard library ({root})", files
    where = Path(path).expanduser()
    if where.is_file():
        return str(where), [where]
    if where.is_dir():
        files = sorted(
            (p for p in where.rglob("*") if p.is_file() and not p.name.startswith(".")),
            key=lambda p: p.relative_to(where).as_posix(),
        )
        if not files:
            raise ConfigError("dataset.path", f"{where} holds no files")
        return str(where), files
    raise ConfigError("dataset.path", f"no file or folder at {where}")


def char_start(data: bytes, at: int) -> int:
    """The first position from ``at`` on that starts a UTF-8 character (no cut inside one)."""
    while at < len(data) and data[at] & 0xC0 == 0x80:
        at += 1
    return at


def split_bytes(files: list[Path], shares: tuple[float, float] = FILE_SHARES) -> dict[str, bytes]:
    """The corpus's bytes per split: by file for several files, by position for one (the
    validation and test ``shares`` at its end; no test share: the test is the validation)."""
    if len(files) == 1:
        data = files[0].read_bytes()
        val_share, test_share = shares
        val_at = char_start(data, int(len(data) * (1 - val_share - test_share)))
        test_at = char_start(data, int(len(data) * (1 - test_share)))
        test = data[test_at:] if test_share else data[val_at:test_at]
        return {"train": data[:val_at], "val": data[val_at:test_at], "test": test}
    parts: dict[str, list[bytes]] = {"train": [], "val": [], "test": []}
    for index, file in enumerate(files):
        split = {0: "val", 1: "test"}.get(index % SPLIT_EVERY, "train")
        parts[split].append(file.read_bytes())
    return {split: b"".join(chunks) for split, chunks in parts.items()}


def byte_tokens(data: bytes) -> Tensor:
    """``data`` as a uint8 tensor (without a copy of the bytes into Python ints)."""
    if not data:
        return torch.zeros(0, dtype=torch.uint8)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def fetch(path: Path, url: str) -> None:
    """Download ``url`` to ``path`` (through a temporary file: no half-written corpus)."""
    import urllib.request

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_SECONDS) as response:
            partial.write_bytes(response.read())
    except OSError as err:
        partial.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise ConfigError("dataset.url", f"cannot download {url}: {reason}") from None
    partial.replace(path)


@functools.lru_cache(maxsize=4)
def read_corpus(path: str | None, tokens: str, shares: tuple[float, float] = FILE_SHARES) -> Corpus:
    """The corpus at ``path`` (None: the standard library) as ``tokens``; cached per process."""
    if tokens not in TOKENS:
        raise ConfigError("dataset.tokens", f"must be one of {', '.join(TOKENS)}, got {tokens!r}")
    source, files = corpus_files(path)
    raw = split_bytes(files, shares)
    digest = hashlib.sha256(raw["train"] + raw["val"] + raw["test"]).hexdigest()[:16]
    if tokens == "byte":
        splits = {k: byte_tokens(v) for k, v in raw.items()}
        return Corpus(splits, None, source, digest)
    text = {k: v.decode("utf-8", errors="replace") for k, v in raw.items()}
    vocab = sorted(set("".join(text.values())))
    ids = {char: i for i, char in enumerate(vocab)}
    dtype = torch.uint8 if len(vocab) <= 256 else torch.int32
    splits = {k: torch.tensor([ids[c] for c in v], dtype=dtype) for k, v in text.items()}
    return Corpus(splits, vocab, source, digest)


def windows(tokens: Tensor, block: int, starts: Tensor) -> tuple[Tensor, Tensor]:
    """Inputs ``tokens[s : s + block]`` and next-token targets ``tokens[s + 1 : s + block + 1]``
    for each start ``s``."""
    offsets = torch.arange(block)
    index = starts[:, None] + offsets[None, :]
    return tokens[index], tokens[index + 1]


def every_window(length: int, block: int) -> Tensor:
    """Starts of the non-overlapping windows that cover a split of ``length`` tokens."""
    return torch.arange((length - 1) // block) * block


class TextDataModule(TrainPosition, SplitBatches, pl.LightningDataModule):
    """Next-token windows of a corpus (:func:`read_corpus`), batched by index like lrexp's
    tensor data module: seeded order (``order_digest``), exact mid-epoch resume, and a strided
    shard of every global batch per process under data parallelism."""

    target_kind = TARGET_KIND
    single_pass = True  #: a run meant to read each training window at most once

    def __init__(
        self,
        name: str = "text",
        path: str | None = None,
        tokens: str = "byte",
        block_size: int = 64,
        batch_size: int = 12,
        eval_batch_size: int = 64,
        val_windows: int = 64,
        shuffle_seed: int = 0,
        val_share: float = FILE_SHARES[0],
        test_share: float = FILE_SHARES[1],
        url: str | None = None,
        download: bool = False,
    ) -> None:
        super().__init__()
        self.name, self.path, self.tokens = name, path, tokens
        self.shares = (val_share, test_share)
        self.url, self.download = url, download
        self.block_size, self.batch_size = block_size, batch_size
        self.eval_batch_size, self.val_windows = eval_batch_size, val_windows
        self.shuffle_seed = shuffle_seed
        #: serve the whole validation split instead of the fixed windows (set by the run for
        #: its final validation, :func:`lrexp.run.train.whole_validation`)
        self.whole_val = False
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.device = torch.device("cpu")  #: where batches go without a Trainer

    def corpus(self) -> Corpus:
        """The corpus, read once per process; fetched first when it is missing and
        ``download`` is true."""
        if self.path is not None and self.url and not Path(self.path).expanduser().exists():
            if not self.download:
                raise ConfigError(
                    "dataset.download",
                    f"no file at {self.path}; set dataset.download=true to fetch it from "
                    f"{self.url}",
                )
            fetch(Path(self.path).expanduser(), self.url)
        val, test = self.shares
        if not (0 < val < 1 and 0 <= test < 1 and val + test < 1):
            raise ConfigError(
                "dataset.val_share",
                f"the validation and test shares must leave training text, got {val}, {test}",
            )
        return read_corpus(self.path, self.tokens, (float(val), float(test)))

    def _check(self) -> Corpus:
        for key, value, minimum in (
            ("block_size", self.block_size, 1),
            ("batch_size", self.batch_size, 1),
            ("eval_batch_size", self.eval_batch_size, 1),
            ("val_windows", self.val_windows, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"dataset.{key}", f"must be an integer >= {minimum}, got {value!r}"
                )
        corpus = self.corpus()
        for split, tokens in corpus.splits.items():
            if len(tokens) < self.block_size + 1:
                raise ConfigError(
                    "dataset.block_size",
                    f"the {split} split of {corpus.source} has {len(tokens)} tokens, fewer than "
                    f"one window of block_size + 1 = {self.block_size + 1}",
                )
        return corpus

    def planned_shape(self) -> tuple[tuple[int, ...], int]:
        """(one window's shape, vocabulary size)."""
        return (self.block_size,), self._check().vocab_size

    def train_windows(self) -> int:
        return (len(self._check().splits["train"]) - 1) // self.block_size

    def planned_train_batches(self) -> int:
        return -(-self.train_windows() // self.batch_size)

    def setup(self, stage: str | None = None) -> None:
        """Cut the windows once; idempotent."""
        if self.splits:
            return
        corpus = self._check()
        block = self.block_size
        train, val, test = (corpus.splits[s] for s in ("train", "val", "test"))
        self.splits = {
            "train": windows(train, block, every_window(len(train), block)),
            "val": windows(val, block, self.val_starts(len(val))),
            "val_full": windows(val, block, every_window(len(val), block)),
            "test": windows(test, block, every_window(len(test), block)),
        }

    def val_starts(self, length: int) -> Tensor:
        """The fixed validation windows: ``val_windows`` starts spread evenly."""
        last = length - self.block_size - 1
        return torch.linspace(0, last, min(self.val_windows, last + 1)).round().long()

    @property
    def source(self) -> str:
        """Where the corpus was read (MLflow's dataset source)."""
        return self.corpus().source

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.block_size,)

    @property
    def num_classes(self) -> int:
        return self.corpus().vocab_size

    def digest(self) -> str:
        """The corpus's digest: identical text gives an identical digest."""
        return self.corpus().digest

    def val_digest(self) -> str:
        """Digest of the validation windows: runs that share it were validated on the same
        text."""
        return tensors_digest(self.splits["val"])

    def description(self) -> dict[str, str]:
        """What the run records about its text (tags)."""
        corpus = self.corpus()
        return {
            "corpus": corpus.source,
            "corpus_digest": corpus.digest,
            "val_digest": self.val_digest(),
            "python_version": platform.python_version(),
            "tokens": f"{self.tokens} (vocabulary {corpus.vocab_size})",
        }

    def order_digest(self) -> str:
        """Digest of the first epoch's training order."""
        x, y = self.splits["train"]
        order = IndexBatches(x, y, self.batch_size, shuffle=True, seed=self.shuffle_seed).order(0)
        return tensors_digest([order], f"batch={self.batch_size},block={self.block_size}")

    def train_dataloader(self) -> IndexBatches:
        return self._train_batches(self.batch_size, self.shuffle_seed)

    def val_dataloader(self) -> IndexBatches:
        """The fixed validation windows; every window of the split while ``whole_val`` is set
        (the final validation, ``val_full/*``)."""
        split = "val_full" if self.whole_val else "val"
        return self._batches(split, batch_size=self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> IndexBatches:
        return self._batches("test", batch_size=self.eval_batch_size, shuffle=False)
