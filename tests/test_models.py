"""Models: every model builds for every input kind and trains on every offline dataset."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import torch
from omegaconf import DictConfig

from lrexp.config.training import train_config
from lrexp.data import DataInfo
from lrexp.errors import ConfigError
from lrexp.models import LSTM
from lrexp.parts import build_model

MODELS = ("cnn", "lstm", "mlp")  # conf/model/*.yaml


def build(node: Mapping[str, Any], shape: tuple[int, ...], classes: int = 10) -> torch.nn.Module:
    """The model ``node`` names, offered ``shape`` and ``classes`` as a run offers them."""
    return build_model(node, DataInfo(shape, classes, 1))


SHAPES = [(1, 28, 28), (3, 32, 32), (1, 40), (1, 8, 8), (2, 39)]


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """``threads=1`` makes the short runs fast and steady; give torch its count back after."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.usefixtures("restore_threads")
def test_configured_models_give_logits_for_every_input_kind(
    make_cfg: Callable[..., DictConfig], name: str
) -> None:
    cfg = make_cfg(f"model={name}")  # the model's real defaults from conf/model
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for shape in SHAPES:
        net = build(cfg.model, shape)
        x = torch.randn(4, *shape)
        logits = net(x)
        assert logits.shape == (4, 10), (name, shape)
        assert torch.isfinite(logits).all()
        logits.logsumexp(dim=1).sum().backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), (name, shape)
        net.eval()
        assert net(x[:1]).shape == (1, 10)  # batch of one, eval mode


def test_bad_model_settings_are_config_errors() -> None:
    # the key the message is about is named (it was model.<name> before issue 11)
    with pytest.raises(ConfigError, match=r"model\.readout: readout must be one of"):
        build({"_target_": "lrexp.models.LSTM", "readout": "first"}, (1, 40))
    with pytest.raises(ConfigError, match=r"model\.norm: norm must be one of"):
        build({"_target_": "lrexp.models.MLP", "norm": "group"}, (1, 8, 8))
    with pytest.raises(ConfigError, match=r"model\.widths: CNN takes no argument 'widths'"):
        build({"_target_": "lrexp.models.CNN", "widths": [8]}, (1, 8, 8))
    with pytest.raises(ConfigError, match=r"model: CNN raised ValueError: CNN needs \(C, L\)"):
        build({"_target_": "lrexp.models.CNN"}, (40,))


def test_lstm_reads_rows_and_chunks() -> None:
    image = LSTM((2, 3, 4), 10)
    x = torch.arange(24.0).reshape(1, 2, 3, 4)
    seq = image.to_sequence(x)
    assert seq.shape == (1, 3, 8)  # one step per row, both channels' rows side by side
    assert seq[0, 1].tolist() == [4, 5, 6, 7, 16, 17, 18, 19]

    signal = LSTM((2, 10), 10, chunk=4)
    seq = signal.to_sequence(torch.arange(20.0).reshape(1, 2, 10))
    assert seq.shape == (1, 3, 8)  # 10 samples -> 3 steps of 4, zero-padded at the end
    assert seq[0, 0].tolist() == [0, 1, 2, 3, 10, 11, 12, 13]
    assert seq[0, 2].tolist() == [8, 9, 0, 0, 18, 19, 0, 0]


@pytest.mark.parametrize("readout", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_readouts(readout: str, bidirectional: bool) -> None:
    net = LSTM((1, 40), 10, readout=readout, bidirectional=bidirectional, num_layers=2)
    assert net(torch.randn(3, 1, 40)).shape == (3, 10)


# model, dataset, epochs, test accuracy it must beat (chance is 0.1). Reached with these budgets:
# digits mlp 0.96, cnn 0.99, lstm 0.87; mnist1d mlp 0.40, cnn 0.83, lstm 0.57.
PAIRS = [
    ("mlp", "digits", 3, 0.85),
    ("cnn", "digits", 3, 0.90),
    ("lstm", "digits", 4, 0.70),
    ("mlp", "mnist1d", 4, 0.28),
    ("cnn", "mnist1d", 3, 0.65),
    ("lstm", "mnist1d", 4, 0.40),
]


@pytest.mark.parametrize(("model", "dataset", "epochs", "floor"), PAIRS)
@pytest.mark.usefixtures("restore_threads")
def test_every_model_trains_on_every_offline_dataset(
    make_cfg: Callable[..., DictConfig], model: str, dataset: str, epochs: int, floor: float
) -> None:
    cfg = make_cfg(
        f"model={model}",
        f"dataset={dataset}",
        "logger=none",
        f"trainer.max_epochs={epochs}",
        "threads=1",
    )
    result = train_config(cfg)
    metrics = result.metrics
    for key in ("train/loss", "val/loss", "test/loss"):
        assert math.isfinite(metrics[key]), (key, metrics)
    assert metrics["train/loss"] < math.log(10)  # below the loss of uniform guessing
    assert metrics["test/acc"] > floor, metrics
    examples = {"digits": 1257, "mnist1d": 3500}[dataset]
    steps = math.ceil(examples / cfg.dataset.batch_size)  # pair defaults may set the batch
    assert result.global_step == epochs * steps


def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    conv = model.get_submodule("features.0")
    assert isinstance(conv, torch.nn.Conv2d)
    return conv


def test_channels_last_cnn_computes_the_same_logits_and_gradients() -> None:
    torch.manual_seed(0)
    plain = build({"_target_": "lrexp.models.CNN", "channels": [8, 16]}, (3, 16, 16))
    fast = build(
        {"_target_": "lrexp.models.CNN", "channels": [8, 16], "channels_last": True}, (3, 16, 16)
    )
    fast.load_state_dict(plain.state_dict())
    conv = first_conv(fast)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    x = torch.randn(4, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3])
    losses = [torch.nn.functional.cross_entropy(net(x), y) for net in (plain, fast)]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(first_conv(fast).weight.grad, first_conv(plain).weight.grad)


@pytest.mark.usefixtures("restore_threads")
def test_bf16_autocast_and_channels_last_train_the_cnn(make_cfg: Callable[..., DictConfig]) -> None:
    """The GPU speed options also run (and learn) on the CPU: bf16 autocast, NHWC."""
    cfg = make_cfg(
        "model=cnn",
        "dataset=digits",
        "logger=none",
        "model.channels_last=true",
        "trainer.precision=bf16-mixed",
        "trainer.max_epochs=2",
        "threads=1",
    )
    result = train_config(cfg)
    assert result.global_step == 2 * 40
    assert result.metrics["test/acc"] > 0.8, result.metrics


@pytest.mark.slow
@pytest.mark.usefixtures("restore_threads")
def test_compiled_model_trains_and_checkpoints_plain_names(
    make_cfg: Callable[..., DictConfig],
) -> None:
    """``compile=true`` compiles in place: same learning, checkpoints loadable uncompiled."""
    cfg = make_cfg("logger=none", "compile=true", "trainer.max_epochs=2", "threads=1")
    result = train_config(cfg)
    assert result.metrics["test/acc"] > 0.8, result.metrics
    state = torch.load(result.output_dir / "checkpoints" / "last.ckpt", weights_only=True)
    names = list(state["state_dict"])
    assert names and not any("_orig_mod" in name for name in names), names


def test_mnist1d_pair_defaults_apply_and_the_command_line_wins(
    make_cfg: Callable[..., DictConfig],
) -> None:
    lstm = make_cfg("dataset=mnist1d", "model=lstm")
    assert (lstm.model.chunk, lstm.dataset.batch_size) == (1, 25)
    mlp = make_cfg("dataset=mnist1d", "model=mlp")
    assert (list(mlp.model.hidden_sizes), mlp.model.norm) == ([256, 256, 256], "batch")
    cnn = make_cfg("dataset=mnist1d", "model=cnn")
    assert cnn.dataset.batch_size == 100  # no pair file: the dataset's own default
    digits = make_cfg("dataset=digits", "model=lstm")
    assert (digits.model.chunk, digits.dataset.batch_size) == (4, 32)  # other pairs untouched
    mine = make_cfg("dataset=mnist1d", "model=lstm", "model.chunk=2", "dataset.batch_size=50")
    assert (mine.model.chunk, mine.dataset.batch_size) == (2, 50)


#: test accuracy of each model class on MNIST-1D in Greydanus, "Scaling down deep learning
#: with MNIST-1D" (the LSTM's class: the paper's GRU)
MNIST1D_PUBLISHED = {"mlp": 0.68, "lstm": 0.91, "cnn": 0.94}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MNIST1D_PUBLISHED))
def test_mnist1d_defaults_reach_the_published_accuracy(
    make_cfg: Callable[..., DictConfig], name: str
) -> None:
    result = train_config(make_cfg("dataset=mnist1d", f"model={name}", "logger=none"))
    assert result.metrics["test/acc"] >= MNIST1D_PUBLISHED[name]
