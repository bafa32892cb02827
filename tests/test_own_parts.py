"""An outside project's model, data and schedule (``examples/lrexp-example``), installed and
run through ``python train.py`` as a user does; and every bad part as one line."""

from __future__ import annotations

import csv
import fcntl
import importlib
import json
import signal
import site
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient
from omegaconf import DictConfig

from conftest import ROOT, experiment_id, run_cli
from lrexp.compare import compare
from lrexp.config.training import train_config
from lrexp.errors import ConfigError

EXAMPLE = ROOT / "examples" / "lrexp-example"
SEARCH = "hydra.searchpath=[pkg://lrexp_example.conf]"
PARTS = [SEARCH, "model=radial", "dataset=rings", "schedule=rex"]
STEPS_PER_EPOCH = 40  # rings: 2000 training points in batches of 50
QUIET = ["trainer.enable_progress_bar=false", "logger.system_metrics=false"]


@pytest.fixture(scope="session")
def example() -> Iterator[None]:
    """``pip install -e examples/lrexp-example``, offline, as the README says (one process at
    a time: xdist workers share the environment)."""
    lock = ROOT / ".pytest_cache" / "example-install.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        installed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-index",
                "--no-deps",
                "--no-build-isolation",
                "-e",
                str(EXAMPLE),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert installed.returncode == 0, installed.stderr[-2000:]
    # This interpreter started before the install: read the new .pth file so that in-process
    # Hydra compose finds pkg://lrexp_example.conf as a fresh `python train.py` would.
    site.addsitedir(sysconfig.get_paths()["purelib"])
    importlib.invalidate_caches()
    yield


def lr_trace(client: MlflowClient, run_id: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, "lr"))


def only_run(client: MlflowClient) -> Any:
    (run,) = client.search_runs([experiment_id(client, "lrexp")])
    return run


@pytest.mark.usefixtures("example")
def test_example_trains_with_the_lr_its_preview_plans(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    overrides = [*PARTS, "schedule.warmup.steps=10", "trainer.max_epochs=2"]
    result = run_cli([*overrides, *QUIET, "hydra.run.dir=out/run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    preview = tmp_path / "preview.csv"
    planned = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrexp.plot_schedules",
            *overrides,
            "--out",
            str(tmp_path / "preview.png"),
            "--csv",
            str(preview),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert planned.returncode == 0, planned.stderr[-2000:]
    with preview.open() as handle:
        rows = list(csv.reader(handle))[1:]
    client = MlflowClient(uri)
    run = only_run(client)
    trace = lr_trace(client, run.info.run_id)
    assert [s for s, _ in trace] == list(range(2 * STEPS_PER_EPOCH))
    assert [v for _, v in trace] == pytest.approx([float(r[1]) for r in rows], rel=1e-12)
    # the REX shape after the 10 warmup steps, at the default lr 0.1
    total = 2 * STEPS_PER_EPOCH - 10
    for step, value in trace[10:]:
        left = 1 - (step - 10) / total
        assert value == pytest.approx(0.1 * left / (0.5 + 0.5 * left), rel=1e-12)
    assert run.data.tags["model"] == "radial" and run.data.tags["schedule"] == "rex"
    assert run.data.params["model._target_"] == "lrexp_example.RadialNet"
    assert "order_digest" in run.data.tags  # the data module gives its order: paired


@pytest.mark.slow
@pytest.mark.usefixtures("example")
def test_example_sweep_gives_a_paired_verdict_table(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    sweep = run_cli(
        [
            "-m",
            *PARTS[:-1],
            "schedule=rex,cosine",
            "seed=0,1",
            "trainer.max_epochs=3",
            *QUIET,
            "hydra.sweep.dir=multirun/s",
        ],
        cwd=tmp_path,
        timeout=900,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id(client, "lrexp")])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    # the sweep's last lines: its verdict table (the rows of summary.json), then where it is
    tail = sweep.stderr.strip().splitlines()[-6:]
    summary = json.loads((tmp_path / "multirun" / "s" / "comparison" / "summary.json").read_text())
    assert tail[0].startswith(f"test/acc (higher is better) against {summary['baseline']}; ")
    assert tail[1].split()[:2] == ["configuration", "verdict"]
    assert [row.split()[:2] for row in tail[2:4]] == [
        [c["label"], c["verdict"]] for c in summary["configurations"]
    ]
    assert tail[4] == "sweep comparison: multirun/s/comparison"
    assert tail[5].startswith(f"sweep parent run {parent.info.run_id}; compare again with: ")
    assert tail[5].endswith("--out <dir> (a new store: this sweep created it)")
    assert sorted((r.data.tags["schedule"], r.data.tags["seed"]) for r in children) == [
        ("cosine", "0"),
        ("cosine", "1"),
        ("rex", "0"),
        ("rex", "1"),
    ]
    assert all(r.info.status == "FINISHED" for r in children)
    out = tmp_path / "cmp"
    compared = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrexp.compare",
            "--tracking-uri",
            uri,
            "--parent",
            parent.info.run_id,
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert compared.returncode == 0, compared.stderr[-3000:]
    with (out / "summary.csv").open() as handle:
        rows = {r["configuration"].split("-")[0]: r for r in csv.DictReader(handle)}
    assert sorted(rows) == ["cosine", "rex"]
    assert {r["n"] for r in rows.values()} == {"2"}
    # paired by the data module's order digest: no line says otherwise
    (other,) = [r for r in rows.values() if r["verdict"] != "baseline"]
    assert other["paired"] == "yes" and other["verdict"] in ("better", "worse", "inconclusive")
    assert "pairing" not in compared.stderr and "unpaired:" not in compared.stderr
    assert json.loads((out / "summary.json").read_text())["metric"] == "test_acc"


@pytest.mark.usefixtures("example")
def test_example_resumes_mid_epoch_exactly(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """A checkpoint written at step 55 (batch 15 of epoch 2), resumed: the same weights and
    losses as a run that was never stopped."""
    import pytorch_lightning as pl

    class InterruptAt(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
            if trainer.global_step == 55 and not trainer.fit_loop.restarting:
                raise KeyboardInterrupt

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    base = [*PARTS, f"logger.tracking_uri={uri}", "trainer.max_epochs=3", *QUIET]
    whole = train_config(make_cfg(*base, f"paths.output_dir={tmp_path}/whole"))
    cut = make_cfg(*base, f"paths.output_dir={tmp_path}/cut")
    with pytest.raises(SystemExit):  # Lightning turns the interrupt into an exit
        train_config(cut, callbacks=[InterruptAt()])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores SIGINT after
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] == 55
    resumed = train_config(make_cfg(*base, f"paths.output_dir={tmp_path}/cut", f"ckpt_path={last}"))
    assert resumed.global_step == whole.global_step == 3 * STEPS_PER_EPOCH
    for key in ("test/loss", "test/acc", "val/loss"):
        assert resumed.metrics[key] == whole.metrics[key], key
    client = MlflowClient(uri)
    losses = {
        run_id: [
            m.value
            for m in sorted(client.get_metric_history(run_id, "val/loss"), key=lambda m: m.step)
        ]
        for run_id in (str(whole.run_id), str(resumed.run_id))
    }
    assert losses[str(whole.run_id)] == losses[str(resumed.run_id)]
    assert lr_trace(client, str(whole.run_id)) == lr_trace(client, str(resumed.run_id))


@pytest.mark.slow
@pytest.mark.usefixtures("example")
def test_example_sigterm_then_resume_finishes_the_same_run(tmp_path: Path) -> None:
    args = [str(ROOT / "train.py"), *PARTS, "trainer.max_epochs=12", *QUIET]
    args.append("hydra.run.dir=outputs/preempted")
    checkpoints = tmp_path / "outputs" / "preempted" / "checkpoints"
    process = subprocess.Popen(
        [sys.executable, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not any(checkpoints.glob("best*.ckpt")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-2000:]
    assert b"lrexp: stopped by SIGTERM; resume with: ckpt_path=" in stderr
    step = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)[
        "global_step"
    ]
    assert 0 < step < 12 * STEPS_PER_EPOCH
    resumed = subprocess.run(
        [sys.executable, *args, "resume=auto"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = only_run(client)
    assert run.info.status == "FINISHED"
    assert [s for s, _ in lr_trace(client, run.info.run_id)] == list(range(12 * STEPS_PER_EPOCH))


def test_a_data_module_that_cannot_resume_mid_epoch_is_refused(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    import pytorch_lightning as pl

    class InterruptAt(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
            if trainer.global_step == 5 and not trainer.fit_loop.restarting:
                raise KeyboardInterrupt

    plain = [f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]", "dataset=plain"]
    cfg = make_cfg(*plain, "logger=none", "trainer.max_epochs=2")
    with pytest.raises(SystemExit):
        train_config(cfg, callbacks=[InterruptAt()])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError) as caught:
        train_config(make_cfg(*plain, "logger=none", "trainer.max_epochs=2", f"ckpt_path={last}"))
    message = str(caught.value)
    assert message.startswith("ckpt_path: ") and "written mid-epoch (batch 5 of 13)" in message
    assert "PlainDataModule cannot restore its position" in message and "\n" not in message


BAD_PARTS = [
    (
        [SEARCH, "model._target_=lrexp_example.Nope"],
        "model._target_: cannot import 'lrexp_example.Nope': module 'lrexp_example' has no "
        "attribute 'Nope'",
    ),
    (
        [SEARCH, "dataset._target_=nopkg.Rings"],
        "dataset._target_: cannot import 'nopkg.Rings': No module named 'nopkg'; make 'nopkg' "
        "importable: pip install -e <its project folder>, or PYTHONPATH=<the folder that holds "
        "nopkg>",
    ),
    (
        [*PARTS, "+model.depth=3"],
        "model.depth: RadialNet takes no argument 'depth'; it takes input_shape, num_classes, "
        "width",
    ),
    (
        [*PARTS, "model.width=-1"],
        "model: RadialNet raised RuntimeError: Trying to create tensor with negative dimension",
    ),
    (
        [
            *PARTS,
            "model._target_=torch.nn.Linear",
            "~model.width",
            "+model.in_features=2",
            "+model.out_features=10",
        ],
        "model: gives outputs of shape (2, 10) for 2 examples, but the data has 3 classes: "
        "expected (2, 3)",
    ),
    (
        [*PARTS, "dataset.train_size=0"],
        "dataset: RingsDataModule's training loader is empty (0 batches per epoch)",
    ),
    (
        [*PARTS, "schedule._target_=argparse.Namespace"],
        "schedule._target_: rex has no lr_at(step) method",
    ),
    ([*PARTS, "schedule.floor=2"], "schedule._target_: rex: ValueError: floor must be in [0, 1)"),
]


@pytest.mark.usefixtures("example")
@pytest.mark.parametrize(("args", "message"), BAD_PARTS, ids=[a[-1] for a, _ in BAD_PARTS])
def test_a_bad_part_is_one_line_before_anything_is_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines == [f"lrexp: error: {message}"] or (
        len(lines) == 1 and lines[0].startswith(f"lrexp: error: {message}")
    ), result.stderr[-2000:]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("example")
def test_a_dataloader_module_is_planned_per_process_under_ddp(
    tmp_path: Path, make_cfg: Callable[..., DictConfig]
) -> None:
    """2010 training points in batches of 50: 41 batches on one process, and on each of two
    processes Lightning's DistributedSampler share, ceil(ceil(2010 / 2) / 50) = 21."""
    from lrexp.config.planning import planned_steps

    rings = [*PARTS, "dataset.train_size=2010", "trainer.max_epochs=2"]
    assert planned_steps(make_cfg(*rings)) == (82, 41)
    assert planned_steps(make_cfg(*rings, "trainer=ddp_cpu")) == (42, 21)
    result = run_cli([*rings, "trainer=ddp_cpu", *QUIET], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = only_run(client)
    assert run.info.status == "FINISHED"
    trace = lr_trace(client, run.info.run_id)
    assert [s for s, _ in trace] == list(range(42))  # the plan's steps, every one logged
    total = 42
    for step, value in trace:
        left = 1 - step / total
        assert value == pytest.approx(0.1 * left / (0.5 + 0.5 * left), rel=1e-12)


def test_a_data_module_without_a_test_split_finishes_with_its_val_metrics(
    make_cfg: Callable[..., DictConfig],
    tracking_uri: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The data contract asks for training and validation loaders only: without
    ``test_dataloader()`` the run says so before training, skips the test phase and ends
    FINISHED with its validation metrics (before: a traceback after training, run FAILED)."""
    overrides = [
        f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]",
        "dataset=train_val_only",
        "trainer.max_epochs=2",
        f"logger.tracking_uri={tracking_uri}",
        *QUIET,
    ]
    result = train_config(make_cfg(*overrides))
    note = (
        "lrexp: note: TrainValDataModule has no test_dataloader(), so the run ends after "
        "training and its last validation (no test/* metrics)"
    )
    assert note in capsys.readouterr().err.splitlines()
    assert result.global_step == 2 * 13  # 400 points in batches of 32
    assert 0.5 < result.metrics["val/acc"] <= 1
    assert not any(key.startswith("test/") for key in result.metrics)
    run = only_run(MlflowClient(tracking_uri))
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val/acc"] == pytest.approx(result.metrics["val/acc"])
    assert not any(key.startswith("test/") for key in run.data.metrics)
    # compared, such runs are judged on their best val/acc (there is no test/acc to default to)
    train_config(make_cfg(*overrides, "schedule=constant"))
    out = compare(tracking_uri, experiment="lrexp", out_dir=tmp_path / "cmp")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "best_val_acc" and len(summary["configurations"]) == 2
    assert all(c["verdict"] != "no value" for c in summary["configurations"])


def test_a_data_module_without_num_classes_takes_the_models_output(
    make_cfg: Callable[..., DictConfig], tracking_uri: str
) -> None:
    """A LightningDataModule without ``num_classes`` (before: refused, "has neither
    num_classes nor num_outputs"): the model's output width is the number of classes, the
    run records that it came from the model, and labels that do not fit are refused."""
    uncounted = [
        f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]",
        "dataset=uncounted",
        "trainer.max_epochs=1",
        f"logger.tracking_uri={tracking_uri}",
        *QUIET,
    ]
    result = train_config(make_cfg(*uncounted, "+model.num_classes=2"))
    assert 0.5 < result.metrics["test/acc"] <= 1
    run = only_run(MlflowClient(tracking_uri))
    assert run.data.tags["num_outputs_from"] == "model"
    with pytest.raises(ConfigError) as caught:  # labels 0..2, but 2 outputs
        train_config(make_cfg(*uncounted, "+model.num_classes=2", "dataset.classes=3"))
    assert str(caught.value).startswith(
        "dataset: has no num_classes, and the model's 2 outputs do not fit the labels of its "
        "first training batch (torch.int64, 0..2)"
    )
    with pytest.raises(ConfigError) as caught:  # the model has no size to be given
        train_config(make_cfg(*uncounted))
    assert str(caught.value).startswith("model.num_classes: ")
