"""Language models: text windows, the GPT, the task's metrics and weight averaging, with real
Trainers and a real MLflow store."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import ROOT, TINY_GPT
from lrexp.averaging import EMA, BlockSWA
from lrexp.config.training import train_config
from lrexp.config.validate import validate
from lrexp.data.text import SPLIT_EVERY, TextDataModule, read_corpus, stdlib_files
from lrexp.errors import ConfigError
from lrexp.models import GPT, LSTM

#: a small GPT and short windows: a run of a few dozen steps takes seconds
SMALL = [
    "experiment=lm",
    *TINY_GPT,
    "trainer.max_steps=40",
    "trainer.val_check_interval=20",
    "logger.train_loss_every=10",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 120 real text files: the first of the standard library's sources."""
    folder = tmp_path_factory.mktemp("corpus")
    for index, source in enumerate(stdlib_files()[1][:120]):
        (folder / f"{index:03d}.py").write_bytes(source.read_bytes())
    return folder


def test_windows_split_by_file_and_predict_the_next_token(corpus: Path) -> None:
    files = sorted(corpus.iterdir())
    data = TextDataModule(path=str(corpus), block_size=16, batch_size=4, val_windows=8)
    data.setup()
    val = b"".join(f.read_bytes() for i, f in enumerate(files) if i % SPLIT_EVERY == 0)
    test = b"".join(f.read_bytes() for i, f in enumerate(files) if i % SPLIT_EVERY == 1)
    text = read_corpus(str(corpus), "byte")
    assert bytes(text.splits["val"].tolist()) == val
    assert bytes(text.splits["test"].tolist()) == test
    train_tokens = len(text.splits["train"])
    assert train_tokens == sum(f.stat().st_size for f in files) - len(val) - len(test)
    x, y = data.splits["train"]
    assert x.shape == y.shape == ((train_tokens - 1) // 16, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])  # the target is the next token
    assert torch.equal(x.flatten(), text.splits["train"][: x.numel()])  # windows do not overlap
    assert data.size("val") == 8 and data.size("test") == (len(test) - 1) // 16
    # the validation windows are fixed: another seed and batch size read the same text
    other = TextDataModule(path=str(corpus), block_size=16, batch_size=7, shuffle_seed=3)
    other.val_windows = 8
    other.setup()
    assert other.val_digest() == data.val_digest()
    assert other.order_digest() != data.order_digest()
    assert data.planned_shape() == ((16,), 256)
    assert data.planned_train_batches() == len(data.train_dataloader()) == math.ceil(len(x) / 4)


def test_char_tokens_and_a_single_file_split_by_position(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text("héllo wörld, " * 400, encoding="utf-8")
    data = TextDataModule(path=str(path), tokens="char", block_size=8)
    corpus = data.corpus()
    assert corpus.vocab == sorted(set("héllo wörld, "))
    decoded = {
        split: "".join(corpus.vocab[i] for i in tokens.tolist())
        for split, tokens in corpus.splits.items()
    }
    # the first 90 % of the bytes train, then 5 % and 5 %, cut between characters
    assert decoded["train"] + decoded["val"] + decoded["test"] == "héllo wörld, " * 400
    size = len(path.read_bytes())
    assert abs(len(decoded["train"].encode()) - 0.9 * size) <= 2
    assert abs(len(decoded["test"].encode()) - 0.05 * size) <= 2
    assert data.planned_shape() == ((8,), len(corpus.vocab))


def test_gpt_is_causal_tied_and_sized_like_nanogpt() -> None:
    torch.manual_seed(0)
    model = GPT(num_outputs=65, input_shape=(64,), n_layer=4, n_head=4, n_embd=128, block_size=64)
    model.eval()
    tokens = torch.randint(0, 65, (2, 64))
    changed = tokens.clone()
    changed[:, 40:] = (changed[:, 40:] + 1) % 65
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert a.shape == (2, 64, 65)
    assert torch.equal(a[:, :40], b[:, :40])  # no position sees a later token
    assert not torch.allclose(a[:, 40:], b[:, 40:])
    assert model.head.weight is model.token_embedding.weight
    parameters = sum(p.numel() for p in model.parameters())
    # nanoGPT's baby GPT on Tiny Shakespeare (65 characters) has 0.80M parameters
    assert 0.79e6 < parameters < 0.82e6


def test_averagers_give_the_known_means() -> None:
    net = torch.nn.Linear(1, 1, bias=False)
    ema, swa = EMA(net, decay=0.5), BlockSWA(net, interval=5, horizon=10)
    expected_ema = None
    for step in range(1, 21):
        with torch.no_grad():
            net.weight.fill_(float(step))
        ema.update(net, step)
        swa.update(net, step)
        expected_ema = step if expected_ema is None else 0.5 * expected_ema + 0.5 * step
        evaluated = swa.evaluated()
        if step < 10:
            assert evaluated is None
        elif step < 20:
            assert float(evaluated.weight) == 7.5  # type: ignore[union-attr]  # mean of 5, 10
    assert float(swa.evaluated().weight) == 17.5  # type: ignore[union-attr]  # mean of 15, 20
    assert float(ema.average.module.weight) == pytest.approx(expected_ema)  # type: ignore[union-attr]


def test_language_model_run_logs_tokens_bits_and_averages(
    make_cfg: Callable[..., DictConfig], corpus: Path, tracking_uri: str
) -> None:
    result = train_config(
        make_cfg(
            *SMALL,
            f"dataset.path={corpus}",
            "averaging=swa",
            "averaging.horizon=10",
            f"logger.tracking_uri={tracking_uri}",
        )
    )
    client = MlflowClient(tracking_uri)
    run = client.get_run(str(result.run_id))
    metrics, tags = run.data.metrics, run.data.tags
    assert result.objective == "val/loss" and tags["objective"] == "val/loss:min"
    for split in ("val", "test"):
        assert metrics[f"{split}/bpb"] == pytest.approx(metrics[f"{split}/loss"] / math.log(2))
        assert metrics[f"{split}/ppl"] == pytest.approx(math.exp(metrics[f"{split}/loss"]))
        assert math.isfinite(metrics[f"{split}/loss_swa"])
    assert metrics["val/loss"] < math.log(256)  # it learned something in 40 steps
    tokens = client.get_metric_history(run.info.run_id, "train/tokens")
    assert [(m.step, m.value) for m in tokens] == [(s, s * 8 * 32) for s in (10, 20, 30, 40)]
    rates = client.get_metric_history(run.info.run_id, "train/tokens_per_s")
    assert len(rates) == 4 and all(m.value > 0 for m in rates)
    swa = sorted(
        (m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val/loss_swa")
    )
    assert [s for s, _ in swa] == [20, 40]  # once a block has completed, at every validation
    assert tags["corpus_digest"] == read_corpus(str(corpus), "byte").digest
    assert tags["python_version"] == sys.version.split()[0]
    assert int(tags["parameters"]) == sum(
        p.numel()
        for p in GPT(256, (32,), n_layer=1, n_head=2, n_embd=32, block_size=32).parameters()
    )
    assert float(tags["data_passes"]) < 1
    assert "val/loss_swa" in tags["metric_modes"]
    assert '"val_full/loss": "min"' in tags["metric_modes"]


def test_the_final_weights_are_validated_on_the_whole_split(
    make_cfg: Callable[..., DictConfig], corpus: Path, tracking_uri: str, tmp_path: Path
) -> None:
    """Training validates on 16 fixed windows; the last step's weights once more on every
    window of the validation split, as ``val_full/*`` at that step, equal to a plain loop's
    loss of the final checkpoint over those windows."""
    result = train_config(
        make_cfg(
            *SMALL,
            f"dataset.path={corpus}",
            f"logger.tracking_uri={tracking_uri}",
            f"paths.output_dir={tmp_path}",
        )
    )
    client = MlflowClient(tracking_uri)
    history = client.get_metric_history(str(result.run_id), "val_full/loss")
    assert [m.step for m in history] == [40]
    assert [m.step for m in client.get_metric_history(str(result.run_id), "val/loss")] == [20, 40]
    data = TextDataModule(path=str(corpus), block_size=32, val_windows=16)
    data.setup()
    x, y = data.splits["val_full"]
    assert len(y) > 4 * len(data.splits["val"][1])  # the whole split, not the 16 windows
    from lrexp.run.merge import net_weights

    model = GPT(256, (32,), n_layer=1, n_head=2, n_embd=32, block_size=32)
    model.load_state_dict(net_weights(tmp_path / "checkpoints" / "last.ckpt"))
    model.eval()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten().long())
    assert history[0].value == pytest.approx(float(expected), rel=1e-5)
    assert result.metrics["val_full/bpb"] == pytest.approx(history[0].value / math.log(2))
    assert history[0].value != result.metrics["val/loss"]


def test_bad_language_model_inputs_are_one_line(
    make_cfg: Callable[..., DictConfig], corpus: Path, tmp_path: Path
) -> None:
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("too short")
    cases = {
        f"dataset.path={tmp_path}/missing": "dataset.path: no file or folder at",
        f"dataset.path={tiny}": "dataset.block_size: the train split of",
        "model.block_size=16": "model.block_size: is 16, shorter than the data's context of 32",
        "+model.vocab_size=100": "model.vocab_size: is 100, but the data's vocabulary has 256",
        "task=classification": "task: classification needs class labels, but text gives token",
        "averaging=ema averaging.decay=1.0": "averaging.decay: must be in (0, 1), got 1.0",
        "averaging=swa": "averaging.horizon: a block of 500 steps is longer than the run (40",
        "averaging=ema optimizer=sf_adamw schedule=constant": "averaging: a schedule-free",
    }
    for override, message in cases.items():
        overrides = override.split() if override.startswith("averaging") else [override]
        path = [] if "dataset.path" in override else [f"dataset.path={corpus}"]
        with pytest.raises(ConfigError) as caught:
            validate(make_cfg(*SMALL, *path, *overrides))
        assert str(caught.value).startswith(message), (override, str(caught.value))
    with pytest.raises(ConfigError) as caught:
        validate(make_cfg("task=language_model"))
    assert str(caught.value).startswith("task: language_model needs token sequences, but digits")


def test_cli_refuses_a_missing_corpus_before_writing_anything(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=lm",
            f"dataset.path={tmp_path}/nothing",
            f"logger.tracking_uri=sqlite:///{store}",
            f"hydra.run.dir={tmp_path}/out",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"lrexp: error: dataset.path: no file or folder at {tmp_path}/nothing"
    )
    assert not store.exists() and not (tmp_path / "out").exists()


def test_a_merge_and_a_cooldown_fork_from_one_trunk_step_side_by_side(
    make_cfg: Callable[..., DictConfig], corpus: Path, tracking_uri: str, tmp_path: Path
) -> None:
    """A constant-LR trunk keeps steps 20, 40 and 60; a merge of the last 2 kept checkpoints
    up to 40 and a linear cooldown from 40 are compared with the trunk's final state."""
    common = [*SMALL, f"dataset.path={corpus}", f"logger.tracking_uri={tracking_uri}"]
    trunk = train_config(
        make_cfg(
            *common,
            "schedule=constant",
            "trainer.max_steps=60",
            "callbacks.checkpoint.keep_steps=[20,40,60]",
            f"paths.output_dir={tmp_path}/trunk",
        )
    )
    fork = ["fork.from=" + str(trunk.run_id), "fork.at=40"]
    merge = train_config(
        make_cfg(*common, "fork=merge", *fork, "fork.merge=2", f"paths.output_dir={tmp_path}/m")
    )
    cooldown = train_config(
        make_cfg(
            *common, "fork=cooldown", *fork, "fork.length=20", f"paths.output_dir={tmp_path}/c"
        )
    )
    client = MlflowClient(tracking_uri)
    merged = client.get_run(str(merge.run_id))
    assert merged.info.run_name.startswith("merge-2@40-")
    assert merged.data.tags["fork_of"] == trunk.run_id
    assert (merged.data.tags["fork_at"], merged.data.tags["fork_length"]) == ("40", "0")
    assert merged.data.tags["merged_steps"] == "20,40"
    for key in ("val/loss", "val_full/loss"):  # at the trunk's step, on the whole split too
        assert [m.step for m in client.get_metric_history(merged.info.run_id, key)] == [40]
    assert not client.get_metric_history(merged.info.run_id, "lr")  # it trained no step
    # the weights it evaluates are the mean of the two kept checkpoints' weights
    from lrexp.run.merge import average_into, net_weights

    kept = tmp_path / "trunk" / "checkpoints"
    mean = {
        k: (a + b) / 2
        for (k, a), b in zip(
            net_weights(kept / "step-20.ckpt").items(),
            net_weights(kept / "step-40.ckpt").values(),
            strict=True,
        )
    }
    model = GPT(256, (32,), n_layer=1, n_head=2, n_embd=32, block_size=32)
    average_into(model, [kept / "step-20.ckpt", kept / "step-40.ckpt"])
    for key, value in model.state_dict().items():
        assert torch.allclose(value, mean[key], atol=1e-7), key
    assert merge.metrics["val/loss"] != trunk.metrics["val/loss"]
    assert cooldown.global_step == 60

    out = tmp_path / "cmp"
    from lrexp.compare import main

    main(["--tracking-uri", tracking_uri, "--experiment", "lm", "--out", str(out)])
    envelope = (out / "envelope.md").read_text()
    assert "| `linear cooldown` | `merge` |" in envelope  # side by side, one column each
    summary = (out / "summary.md").read_text()
    assert "merge-2@40" in summary and "cooldown-linear@40" in summary


SHAKESPEARE = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

"""


def test_tiny_shakespeare_reads_the_real_format_and_downloads_only_when_asked(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """The reader on a file written like nanoGPT's input.txt (speaker lines, blank lines):
    characters, the first 90 % training, the test reading the whole validation text."""
    folder = tmp_path / "data" / "tinyshakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_text(SHAKESPEARE * 40)
    small = [
        *("dataset.block_size=16", "model.block_size=16", "model.n_layer=1", "model.n_embd=16"),
        "schedule.warmup.steps=2",
    ]
    cfg = make_cfg("experiment=lm", "dataset=tinyshakespeare", *small)
    validate(cfg)
    data = TextDataModule(**{k: v for k, v in cfg.dataset.items() if k != "_target_"})
    corpus = data.corpus()
    assert corpus.vocab == sorted(set(SHAKESPEARE))
    total = len(SHAKESPEARE * 40)
    assert len(corpus.splits["train"]) == int(total * 0.9)
    assert torch.equal(corpus.splits["test"], corpus.splits["val"])
    (folder / "input.txt").unlink()
    # a fresh config (another val_windows): validation describes the data anew
    missing = make_cfg("experiment=lm", "dataset=tinyshakespeare", "dataset.val_windows=7", *small)
    with pytest.raises(ConfigError) as caught:
        validate(missing)
    assert str(caught.value).startswith(
        f"dataset.download: no file at {folder}/input.txt; set dataset.download=true to fetch"
    )
    unreachable = "dataset.url=http://127.0.0.1:9/input.txt"
    with pytest.raises(ConfigError) as caught:
        validate(
            make_cfg(
                "experiment=lm",
                "dataset=tinyshakespeare",
                "dataset.download=true",
                unreachable,
                *small,
            )
        )
    assert str(caught.value).startswith("dataset.url: cannot download http://127.0.0.1:9/")
    assert not list(folder.iterdir())  # no partial file left behind


@pytest.mark.slow
def test_an_interrupted_averaging_run_resumes_to_the_same_averages(
    make_cfg: Callable[..., DictConfig], corpus: Path, tracking_uri: str, tmp_path: Path
) -> None:
    """SWA blocks of 10 steps, interrupted mid-block at step 25 (Ctrl-C, as SIGINT does) and
    resumed from last.ckpt: every averaged and raw validation equals the straight run's."""
    import signal

    from test_resume import InterruptAt

    common = [
        *SMALL,
        f"dataset.path={corpus}",
        "averaging=swa",
        "averaging.horizon=10",
        "trainer.deterministic=true",
        f"logger.tracking_uri={tracking_uri}",
    ]
    straight = train_config(make_cfg(*common, f"paths.output_dir={tmp_path}/straight"))
    cut = tmp_path / "cut"
    with pytest.raises(SystemExit):
        train_config(make_cfg(*common, f"paths.output_dir={cut}"), callbacks=[InterruptAt(25)])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores SIGINT after
    last = cut / "checkpoints" / "last.ckpt"
    resumed = train_config(make_cfg(*common, f"paths.output_dir={cut}", f"ckpt_path={last}"))
    client = MlflowClient(tracking_uri)

    def history(run_id: str | None, key: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in client.get_metric_history(str(run_id), key))

    for key in ("val/loss_swa", "val/loss", "train/tokens"):
        assert history(resumed.run_id, key) == history(straight.run_id, key), key
    assert resumed.metrics["test/loss_swa"] == straight.metrics["test/loss_swa"]


def test_the_lstm_is_a_language_model_too(
    make_cfg: Callable[..., DictConfig], corpus: Path, tracking_uri: str
) -> None:
    not_gpt = [o for o in SMALL if not o.startswith("model.")]
    result = train_config(
        make_cfg(
            *not_gpt,
            "model=lstm",
            "model.hidden_size=32",
            f"dataset.path={corpus}",
            f"logger.tracking_uri={tracking_uri}",
        )
    )
    model = LSTM((32,), 256, hidden_size=32)
    tokens = torch.randint(0, 256, (2, 32))
    changed = tokens.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % 256
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert a.shape == (2, 32, 256)
    assert torch.equal(a[:, :20], b[:, :20])  # left to right: no step sees a later token
    assert result.metrics["val/loss"] < math.log(256)
    with pytest.raises(ValueError, match="reads left to right"):
        LSTM((32,), 256, bidirectional=True)


@pytest.mark.slow
def test_two_process_ddp_counts_tokens_globally_and_keeps_the_lr_exact(
    make_cfg: Callable[..., DictConfig], corpus: Path, tmp_path: Path
) -> None:
    """CPU DDP (gloo, 2 processes): each rank takes its half of every global batch of 8
    windows, the run counts the tokens of both, and its lr trace is the planned one."""
    from conftest import run_cli
    from lrexp.config.planning import planned_curve

    overrides = [*SMALL, f"dataset.path={corpus}", "trainer.max_steps=20"]
    result = run_cli(
        [*overrides, "trainer=ddp_cpu", "trainer.enable_progress_bar=false"],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("lm").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["trainer.devices"] == "2"
    lrs = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "lr"))
    planned = planned_curve(make_cfg(*overrides))
    assert [s for s, _ in lrs] == list(range(20))
    assert [v for _, v in lrs] == pytest.approx(planned, rel=1e-12, abs=1e-15)
    tokens = sorted(
        (m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/tokens")
    )
    assert tokens == [(10, 10 * 8 * 32), (20, 20 * 8 * 32)]
    assert math.isfinite(run.data.metrics["test/loss"])
