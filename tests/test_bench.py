"""The benchmark's setups: lrexp trains exactly like the plain loop, and ``make bench`` reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lrexp.bench import cli as bench_cli
from lrexp.bench import steps as bench
from lrexp.data import TensorDataModule, TextDataModule
from lrexp.tracking.store import TrackedRun


@pytest.mark.parametrize("workload", list(bench.WORKLOADS))
def test_lrexp_losses_match_the_plain_loop(workload: str, tmp_path: Path) -> None:
    """Same seed, same batches: lrexp's per-step losses equal the plain loop's to 1e-6, with
    the LR traced to a real MLflow store on the way."""
    steps = 45  # more than one epoch of digits at batch 32
    spec = bench.bench_spec(bench.WORKLOADS[workload], tmp_path, steps)
    data = spec.parts.data()
    assert isinstance(data, TensorDataModule | TextDataModule)
    data.setup("fit")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    TrackedRun(uri, "bench", "create-store", {})

    _, plain = bench.plain_loop(spec, data, steps, warmup=0)
    _, ours = bench.lrexp_path(spec, data, warmup=0, tracking_uri=uri)

    assert len(plain) == len(ours) == steps
    assert all(math.isfinite(loss) for loss in plain)
    assert max(abs(a - b) for a, b in zip(plain, ours, strict=True)) <= 1e-6
    # the losses are a real training curve, not a constant that matches trivially
    assert sum(plain[-10:]) / 10 < 0.9 * sum(plain[:10]) / 10


@pytest.mark.slow
def test_bench_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["--steps", "10", "--warmup", "2", "--repeats", "1", "--workloads", "mlp-digits-b32"]
    bench_cli.main([*args, "--startup-repeats", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "lrexp/plain" in printed and "stock/lrexp" in printed and "loss-log cost" in printed
    assert "lrexp/lightning" in printed
    assert "mlp-digits-b32" in printed
    rows = json.loads(out.read_text())
    (row,) = [r for r in rows if "workload" in r]
    assert row["workload"] == "mlp-digits-b32"
    for key in ("plain_ms", "lightning_ms", "lrexp_ms", "stock_ms", "lrexp_noloss_ms"):
        assert 0 < row[key] < 1000
    (startup,) = [r["startup_s"] for r in rows if "startup_s" in r]
    assert 0 < startup < 120


def test_startup_repeats_zero_skips_the_startup_measurement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--startup-repeats 0`` measures the steps only (before: StatisticsError: no median for
    empty data); a negative count or a baseline without repeats is refused by argparse."""
    out = tmp_path / "bench.json"
    args = ["--steps", "5", "--warmup", "1", "--repeats", "1", "--workloads", "mlp-digits-b32"]
    bench_cli.main([*args, "--startup-repeats", "0", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "mlp-digits-b32" in printed and "startup" not in printed
    rows = json.loads(out.read_text())
    assert [r["workload"] for r in rows] == ["mlp-digits-b32"]
    for bad in (["--startup-repeats", "-1"], ["--startup-repeats", "0", "--startup-baseline", "."]):
        with pytest.raises(SystemExit) as caught:
            bench_cli.main([*args, *bad])
        assert caught.value.code == 2
    assert "--startup-repeats: must be >= 0, got -1" in capsys.readouterr().err


def test_unused_hooks_are_hidden_and_used_ones_still_called(tmp_path: Path) -> None:
    """lrexp hides from each callback the per-step hooks it does not override (Lightning would
    call them at every batch); a hook a callback does override is called at every batch as
    before, and lrexp's own per-step results (the losses) do not change."""
    from pytorch_lightning.callbacks import Callback

    from lrexp.run.callbacks import PER_STEP_HOOKS, LRTrace, skip_unused_hooks

    class CountsBackward(Callback):
        def __init__(self) -> None:
            self.calls = 0

        def on_after_backward(self, *_: object) -> None:
            self.calls += 1

    counter, trace = CountsBackward(), LRTrace()
    skip_unused_hooks([counter, trace])
    assert counter.on_after_backward is not None and trace.on_before_optimizer_step is not None
    assert counter.on_train_batch_end is None and trace.on_after_backward is None
    assert all(getattr(Callback(), hook) is not None for hook in PER_STEP_HOOKS)  # per instance

    steps = 12
    spec = bench.bench_spec(bench.WORKLOADS["mlp-digits-b32"], tmp_path, steps)
    data = spec.parts.data()
    assert isinstance(data, TensorDataModule)
    data.setup("fit")
    clock_losses = bench.lrexp_path(spec, data, warmup=0, tracking_uri=None)[1]
    assert clock_losses == pytest.approx(bench.plain_loop(spec, data, steps, 0)[1], abs=1e-6)

    from lrexp.run.train import build_trainer, lightning_module
    from lrexp.tasks import Classification

    net = bench.fresh_model(spec, data)
    module = lightning_module(spec, net, Classification(10))
    trainer, _ = build_trainer(spec, None, module.task)
    trainer.callbacks.append(counter)  # type: ignore[attr-defined]
    trainer.fit(module, datamodule=data)
    assert counter.calls == steps  # called at every step, though hidden from the others


def test_the_progress_bar_redraws_at_most_ten_times_a_second() -> None:
    """Every ``refresh_rate`` batches, but not twice within 0.1 s, except a bar's last batch."""
    from lrexp.run.callbacks import ProgressBar

    bar = ProgressBar(refresh_rate=1)
    assert bar._should_update(1, 100)
    assert not bar._should_update(2, 100)  # at once after: skipped
    assert bar._should_update(100, 100)  # the last batch always
    bar.drawn_at -= 0.2
    assert bar._should_update(3, 100)
    assert not ProgressBar(refresh_rate=10)._should_update(5, 100)  # not a 10th batch
