"""The schedule plotter: step counts against a real Lightning run, CSV values, PNGs, errors."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from conftest import CONF, ROOT
from lrexp.config.planning import planned_curve, planned_momentum, planned_steps
from lrexp.errors import ConfigError
from lrexp.plan import StepPlan, scheduler_positions
from lrexp.plot_schedules import main
from lrexp.plot_schedules.curves import plan_overrides
from lrexp.plot_schedules.figures import figure_for
from lrexp.schedules import build_schedule

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DIGITS_STEPS_PER_EPOCH = math.ceil((1797 - 360 - 180) / 32)  # 40


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500


def real_run(cfg: DictConfig, tmp_path: Path) -> tuple[float, list[float], list[float | None]]:
    """Fit ``cfg``'s data, model, Classifier and ``trainer`` settings the way ``lrexp.run.train``
    does (no MLflow, no checkpoints); return the number of optimizer steps the module planned
    for and the LR / momentum that every optimizer update used."""
    import pytorch_lightning as pl
    from torch.optim import Optimizer

    from lrexp.config.training import train_spec
    from lrexp.data import describe
    from lrexp.run.train import lightning_module

    class Record(pl.Callback):
        def __init__(self) -> None:
            self.estimated = math.nan
            self.lrs: list[float] = []
            self.momenta: list[float | None] = []

        def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.estimated = float(len(pl_module.planned_lr))  # type: ignore[arg-type]

        def on_before_optimizer_step(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
        ) -> None:
            group = optimizer.param_groups[0]
            self.lrs.append(float(group["lr"]))
            self.momenta.append(group.get("momentum"))

    spec = train_spec(cfg)
    pl.seed_everything(0, verbose=False)
    data = spec.parts.data()
    net, _, task = spec.parts.build(describe(data, load=True), data)
    module = lightning_module(spec, net, task)
    record = Record()
    trainer = pl.Trainer(
        **spec.trainer,
        logger=False,
        callbacks=[record],
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == len(record.lrs)
    return record.estimated, record.lrs, record.momenta


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ("trainer.max_epochs=2 +trainer.limit_train_batches=0.5", (2 * 20, 20)),
        (
            "trainer.max_epochs=3 trainer.max_steps=50 schedule=onecycle schedule.frequency=3",
            (50, 40),
        ),
        (
            "trainer.max_epochs=2 trainer.accumulate_grad_batches=3 dataset.batch_size=50 "
            "schedule=step schedule.step_size=1 schedule.interval=epoch",
            (2 * 9, 9),
        ),
    ],
    ids=["epochs-limit", "max_steps-frequency-momentum", "accumulate-epoch-interval"],
)
def test_plan_matches_a_real_lightning_run(
    make_cfg: Callable[..., DictConfig],
    tmp_path: Path,
    overrides: str,
    expected: tuple[int, int],
) -> None:
    cfg = make_cfg(*overrides.split(), "logger=none")
    assert planned_steps(cfg) == expected
    estimated, lrs, momenta = real_run(cfg, tmp_path)
    assert planned_steps(cfg)[0] == estimated == len(lrs)
    assert planned_curve(cfg) == pytest.approx(lrs, rel=1e-12, abs=1e-15)
    momentum = planned_momentum(cfg)
    if momentum is not None:  # onecycle/cyclic cycle SGD's momentum
        assert momentum == pytest.approx(momenta, rel=1e-12)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["dataset=mnist1d"], (20 * 140, 140)),  # the MLP's MNIST-1D batch is 25
        (["dataset=mnist1d", "model=cnn"], (20 * 35, 35)),
        (["dataset=mnist"], (20 * 430, 430)),
        (["dataset=fashion_mnist", "trainer.max_steps=1000"], (1000, 430)),
        (["dataset=cifar10", "trainer.accumulate_grad_batches=2"], (20 * 176, 176)),
        (["trainer.max_epochs=-1", "trainer.max_steps=123"], (123, 40)),
        (["trainer.max_epochs=null"], (1000 * 40, 40)),
    ],
)
def test_planned_steps_without_loading_data(
    make_cfg: Callable[..., DictConfig], overrides: list[str], expected: tuple[int, int]
) -> None:
    assert planned_steps(make_cfg(*overrides)) == expected


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["trainer.max_epochs=-1"], "trainer.max_epochs"),
        (["dataset.val_size=1500"], "dataset.val_size"),
        (["dataset.batch_size=0"], "dataset.batch_size"),
        (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches"),
        (["optimizer.lr=0"], "optimizer.lr"),
    ],
)
def test_planning_errors_name_the_key(
    make_cfg: Callable[..., DictConfig], overrides: list[str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        planned_curve(make_cfg(*overrides))
    assert info.value.key == key


def test_scheduler_positions_hold_values_like_lightning() -> None:
    plan = StepPlan(total=9, steps_per_epoch=3, batches_per_epoch=5, accumulate=2)
    assert scheduler_positions(plan) == list(range(9))
    assert scheduler_positions(plan, "epoch") == [0, 0, 0, 3, 3, 3, 6, 6, 6]
    assert scheduler_positions(plan, "epoch", 2) == [0, 0, 0, 0, 0, 0, 6, 6, 6]
    # steps after batches 2, 4, 5 of each epoch; the scheduler steps when the batch is even
    assert scheduler_positions(plan, "step", 2) == [0, 1, 2, 2, 4, 5, 5, 7, 8]


def test_csv_holds_lr_times_multiplier(make_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    families = ["step", "cosine", "onecycle", "wsd", "inverse_sqrt", "cyclic"]
    out, table = tmp_path / "lr.png", tmp_path / "lr.csv"
    assert main([f"schedule={','.join(families)}", "--out", str(out), "--csv", str(table)]) == 0
    assert_png(out)
    header, rows = read_csv(table)
    assert header == ["step", *(f"schedule={name}" for name in families)]
    total = 20 * DIGITS_STEPS_PER_EPOCH
    assert [int(row[0]) for row in rows] == list(range(total))
    for column, name in enumerate(families, start=1):
        settings = OmegaConf.to_container(make_cfg(f"schedule={name}").schedule, resolve=True)
        schedule = build_schedule(settings, total, 0.1, DIGITS_STEPS_PER_EPOCH)  # type: ignore[arg-type]
        values = [float(row[column]) for row in rows]
        assert values == [0.1 * schedule.lr_at(step) for step in range(total)], name


def test_overlay_draws_one_curve_per_combination(tmp_path: Path) -> None:
    plan = plan_overrides(
        ["schedule=step,cosine", "optimizer=sgd,adam", "schedule.warmup.steps=0,2"]
    )
    assert len(plan.curves) == 8
    assert plan.swept_keys == ["schedule", "optimizer", "schedule.warmup.steps"]
    combos = {tuple(curve.swept.values()) for curve in plan.curves}
    assert len(combos) == 8
    adam = next(c for c in plan.curves if c.swept["optimizer"] == "adam")
    assert adam.lrs[0] == pytest.approx(1e-3 * (0.1 if adam.warmup_steps else 1.0))
    fig = figure_for(plan)
    assert len(fig.axes[0].get_lines()) == 8
    assert len(fig.legends[0].get_texts()) == 8

    table = tmp_path / "overlay.csv"
    args = ["schedule=step,cosine", "optimizer=sgd,adam", "schedule.warmup.steps=0,2"]
    assert main([*args, "--out", str(tmp_path / "o.png"), "--csv", str(table)]) == 0
    header, _ = read_csv(table)
    assert len(header) == 1 + 8


def test_list_values_stay_one_value(tmp_path: Path) -> None:
    plan = plan_overrides(["schedule=multistep", "schedule.milestones=[2,4]"])
    (curve,) = plan.curves
    assert curve.params["milestones"] == [2, 4]
    assert curve.lrs[2 * 40 - 1] == pytest.approx(0.1) and curve.lrs[2 * 40] == pytest.approx(0.01)
    swept = plan_overrides(["schedule=multistep", "schedule.milestones=[2,4],[5,10]"])
    assert [c.swept["schedule.milestones"] for c in swept.curves] == ["[2,4]", "[5,10]"]


def test_metric_driven_is_drawn_dashed_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "plateau.csv"
    assert main(["schedule=plateau", "--out", str(tmp_path / "p.png"), "--csv", str(table)]) == 0
    assert "metric-driven" in capsys.readouterr().err
    _, rows = read_csv(table)
    assert {float(row[1]) for row in rows} == {0.1}
    (curve,) = plan_overrides(["schedule=plateau"]).curves
    assert curve.metric_driven
    line = figure_for(plan_overrides(["schedule=plateau"])).axes[0].get_lines()[0]
    assert line.get_linestyle() == "--"


def test_gallery_covers_every_family(tmp_path: Path) -> None:
    out, table = tmp_path / "gallery.png", tmp_path / "gallery.csv"
    assert main(["--gallery", str(out), "--csv", str(table)]) == 0
    assert_png(out)
    header, rows = read_csv(table)
    assert sorted(header[1:]) == sorted(p.stem for p in (CONF / "schedule").glob("*.yaml"))
    columns = {name: [float(row[i]) for row in rows] for i, name in enumerate(header) if i}
    for name in ("wsd", "inverse_sqrt"):  # drawn with a warmup from 0.1 * lr
        assert columns[name][0] == pytest.approx(0.01)
    assert set(columns["plateau"]) == set(columns["bold_driver"]) == {0.1}


@pytest.mark.parametrize(
    "args",
    [
        ["schedule=no_such_family"],
        ["schedule=step", "schedule.gamma=-1"],
        ["trainer.no_such_key=1"],
        ["schedule=cosine,step", "schedule.min_factor=0.5"],
        ["schedule.gamma=[1,"],
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main([*args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrexp: error: "), err
    assert not list(tmp_path.iterdir())


def test_a_type_error_names_its_key_and_combination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed=0,abc", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        "lrexp: error: seed: Value 'abc' of type 'str' could not be converted to Integer "
        "(with seed=abc)"
    )
    assert not list(tmp_path.iterdir())


def test_command_line_error_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plot_schedules.py"), "schedule=no_such_family"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrexp: error: "), result.stderr
    assert "no_such_family" in lines[0] and "cosine" in lines[0]  # names the available options
    assert not list(tmp_path.iterdir())


def test_default_output_is_schedule_png_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["schedule=wsd", "--log"]) == 0
    assert_png(tmp_path / "schedule.png")


def test_length_mismatch_is_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["schedule=linear", "schedule.total=100", "--out", str(tmp_path / "l.png")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("lrexp: note: the schedule lasts 100 steps but the run has 800")
