"""``make bench`` / ``lrexp-bench``: ms per optimizer step of a plain PyTorch loop, lrexp and a
stock Lightning template, and the startup ratio of ``python train.py``."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from lrexp.bench.startup import measure_startup, startup_lines
from lrexp.bench.steps import WORKLOADS, device_name, measure


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
        "lrexp ms",
        "stock ms",
        "lrexp/plain",
        "stock/lrexp",
        "lr-log cost",
        "loss-log cost",
    )
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs,"
        f" {device_name(args.overrides)}; median of {args.repeats} x {args.steps} steps"
        + (f"; overrides: {' '.join(args.overrides)}" if args.overrides else "")
    )
    print(f"{'workload':<20}" + "".join(f"{c:>14}" for c in columns))
    for row in rows:
        cells = (
            f"{row.plain_ms:.3f}",
            f"{row.lrexp_ms:.3f}",
            f"{row.stock_ms:.3f}",
            f"{row.lrexp_ms / row.plain_ms:.2f}",
            f"{row.stock_ms / row.lrexp_ms:.2f}",
            f"{row.lrexp_ms / row.lrexp_nolog_ms - 1:+.1%}",
            f"{row.lrexp_ms / row.lrexp_noloss_ms - 1:+.1%}",
        )
        print(f"{row.workload:<20}" + "".join(f"{c:>14}" for c in cells))
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
