"""``make bench`` / ``lrexp-bench``: ms per optimizer step of a plain PyTorch loop, the least
Lightning loop, lrexp and a stock Lightning template, and the startup ratio of ``python
train.py``."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lrexp.bench.lightning_loops import bare_lightning, stock_lightning
from lrexp.bench.startup import measure_startup, startup_lines
from lrexp.bench.steps import (
    WORKLOADS,
    bench_device,
    bench_spec,
    device_name,
    lrexp_path,
    plain_loop,
)
from lrexp.data import TensorDataModule, TextDataModule
from lrexp.tracking.store import TrackedRun


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


@dataclass
class Row:
    """Median ms per step of each setup of one workload."""

    workload: str
    plain_ms: float
    lrexp_ms: float
    lrexp_nolog_ms: float
    stock_ms: float
    lrexp_noloss_ms: float  #: lrexp with logging, without ``train/loss_window``
    lightning_ms: float  #: :func:`bare_lightning`: what Lightning's loop itself costs


def measure(
    name: str, steps: int, warmup: int, repeats: int, root: Path, overrides: list[str]
) -> Row:
    """Median ms/step of each setup over ``repeats`` interleaved rounds."""
    quiet = ["trainer.enable_model_summary=false"]
    spec = bench_spec(WORKLOADS[name] + quiet + overrides, root, steps)
    data = spec.parts.data()
    if not isinstance(data, TensorDataModule | TextDataModule):
        raise SystemExit("bench: the workloads time lrexp's tensor data module")
    data.setup("fit")
    data.device = bench_device(spec)  # the plain loop's batches, on the device lrexp trains on
    uri = f"sqlite:///{root}/mlflow.db"
    TrackedRun(uri, "bench", "create-store", {})
    coarse = bench_spec(
        WORKLOADS[name] + quiet + overrides + ["logger.train_loss_every=null"], root, steps
    )
    setups: dict[str, Callable[[], float]] = {
        "plain": lambda: plain_loop(spec, data, steps, warmup)[0],
        "lrexp": lambda: lrexp_path(spec, data, warmup, uri)[0],
        "lrexp_nolog": lambda: lrexp_path(spec, data, warmup, None)[0],
        "lrexp_noloss": lambda: lrexp_path(coarse, data, warmup, uri)[0],
        "stock": lambda: stock_lightning(spec, data, warmup, uri),
        "lightning": lambda: bare_lightning(spec, data, warmup),
    }
    # Rounds of every setup in turn, so that a slow spell of a shared CPU hits all setups alike.
    samples: dict[str, list[float]] = {key: [] for key in setups}
    for _ in range(repeats):
        for key, run in setups.items():
            samples[key].append(run())
    medians = {key: statistics.median(values) for key, values in samples.items()}
    return Row(
        name,
        medians["plain"],
        medians["lrexp"],
        medians["lrexp_nolog"],
        medians["stock"],
        medians["lrexp_noloss"],
        medians["lightning"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=count(1), default=300, help="timed steps per repeat")
    parser.add_argument("--warmup", type=count(0), default=20, help="untimed steps first")
    parser.add_argument("--repeats", type=count(1), default=5, help="interleaved rounds")
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, help="write one row per workload here")
    parser.add_argument(
        "--startup-repeats",
        type=count(0),
        default=5,
        help="runs of each startup probe (medians); 0 skips the startup measurement",
    )
    parser.add_argument(
        "--startup-baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also time the startup of another checkout (e.g. a git worktree of the commit "
        "before a change), in the same run",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="config overrides for every workload and setup, e.g. trainer=gpu "
        "trainer.precision=bf16-mixed compile=true",
    )
    args = parser.parse_args(argv)
    if args.startup_baseline is not None and args.startup_repeats == 0:
        parser.error("--startup-baseline needs --startup-repeats >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads:
            total = args.steps + args.warmup
            root = Path(tmp) / name
            rows.append(measure(name, total, args.warmup, args.repeats, root, args.overrides))
        startup = baseline = None
        if args.startup_repeats:
            startup = measure_startup(Path(tmp) / "startup", args.startup_repeats)
        if args.startup_baseline is not None:
            checkout = args.startup_baseline.resolve()
            baseline = measure_startup(Path(tmp) / "baseline", args.startup_repeats, checkout)
    columns = (
        "plain ms",
        "lightning ms",
        "lrexp ms",
        "stock ms",
        "lrexp/plain",
        "lrexp/lightning",
        "stock/lrexp",
        "lr-log cost",
        "loss-log cost",
    )
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs,"
        f" {device_name(args.overrides)}; median of {args.repeats} x {args.steps} steps"
        + (f"; overrides: {' '.join(args.overrides)}" if args.overrides else "")
    )
    print(f"{'workload':<20}" + "".join(f"{c:>16}" for c in columns))
    for row in rows:
        cells = (
            f"{row.plain_ms:.3f}",
            f"{row.lightning_ms:.3f}",
            f"{row.lrexp_ms:.3f}",
            f"{row.stock_ms:.3f}",
            f"{row.lrexp_ms / row.plain_ms:.2f}",
            f"{row.lrexp_ms / row.lightning_ms:.2f}",
            f"{row.stock_ms / row.lrexp_ms:.2f}",
            f"{row.lrexp_ms / row.lrexp_nolog_ms - 1:+.1%}",
            f"{row.lrexp_ms / row.lrexp_noloss_ms - 1:+.1%}",
        )
        print(f"{row.workload:<20}" + "".join(f"{c:>16}" for c in cells))
    for measured in (startup, baseline):
        if measured is not None:
            print("\n".join(startup_lines(measured, args.startup_repeats)))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "workload": r.workload,
                        "plain_ms": r.plain_ms,
                        "lightning_ms": r.lightning_ms,
                        "lrexp_ms": r.lrexp_ms,
                        "stock_ms": r.stock_ms,
                        "lrexp_nolog_ms": r.lrexp_nolog_ms,
                        "lrexp_noloss_ms": r.lrexp_noloss_ms,
                    }
                    for r in rows
                ]
                + [
                    {
                        "startup_s": startup.first_step,
                        "startup_new_store_s": startup.first_step_new_store,
                        "import_lightning_s": startup.import_lightning,
                        "startup_ratio": startup.ratio,
                        "startup_ratio_new_store": startup.ratio_new_store,
                    }
                    for startup in (startup,)
                    if startup is not None
                ],
                indent=2,
            )
        )
