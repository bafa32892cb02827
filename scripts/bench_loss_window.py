"""Time spent inside ``TrainLossTrace``'s hook during lrexp's real training path (the bench's
``lrexp`` setup, a real SQLite store), as a share of the step time:
``python scripts/bench_loss_window.py [--steps 300] [--repeats 3]``.

Measuring the hook itself isolates the cost of ``train/loss_window`` from a shared machine's
drift, which swamps a few per cent in whole-run timings (docs/performance.md).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from lrexp.bench import steps as bench
from lrexp.data import TensorDataModule
from lrexp.run import callbacks
from lrexp.tracking.store import TrackedRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="*", default=["mlp-digits-b32", "cnn-mnist1d-b100"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    spent = [0.0]
    hook = callbacks.TrainLossTrace.on_train_batch_end

    def timed(self: callbacks.TrainLossTrace, *a: Any, **k: Any) -> None:
        start = time.perf_counter()
        hook(self, *a, **k)
        spent[0] += time.perf_counter() - start

    setattr(callbacks.TrainLossTrace, "on_train_batch_end", timed)  # noqa: B010
    total = args.steps + args.warmup
    for name in args.workloads:
        with tempfile.TemporaryDirectory() as tmp:
            quiet = ["trainer.enable_model_summary=false"]
            spec = bench.bench_spec(bench.WORKLOADS[name] + quiet, Path(tmp), total)
            data = spec.parts.data()
            assert isinstance(data, TensorDataModule)
            data.setup("fit")
            uri = f"sqlite:///{tmp}/mlflow.db"
            TrackedRun(uri, "bench", "create-store", {})
            for _ in range(args.repeats):
                spent[0] = 0.0
                ms, _ = bench.lrexp_path(spec, data, args.warmup, uri)
                per_step = spent[0] * 1000 / total
                print(
                    f"{name}: {ms:.3f} ms/step, hook {per_step:.4f} ms/step ({per_step / ms:.2%})"
                )


if __name__ == "__main__":
    main()
