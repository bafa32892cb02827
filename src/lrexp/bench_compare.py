"""Benchmark ``lrexp-compare`` on a large sweep: direct SQLite reads vs MLflow's client API.

``python scripts/bench_compare.py [--runs 50] [--steps 10000]`` writes a throw-away SQLite
store holding ``--runs`` finished runs with an ``lr`` point at every step and validation
metrics every ``--val-every`` steps, then times :func:`lrexp.compare.compare` over it twice:
with its one-query-per-run SQLite reader and with ``MlflowClient.get_metric_history``. Both
must write the same ``summary.csv``; the script prints seconds and their ratio.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lrexp.cli import quiet_logs
from lrexp.compare import compare

EXPERIMENT = "bench-compare"
SCHEDULES = ("cosine", "step", "exponential", "linear", "onecycle")
BATCH = 1000  # MLflow's limit of metrics per log_batch request


def fill_store(uri: str, runs: int, steps: int, val_every: int) -> None:
    """Log ``runs`` finished runs of ``steps`` LR points each, as a sweep of schedules x seeds."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    now = int(time.time() * 1000)
    for index in range(runs):
        schedule, seed = SCHEDULES[index % len(SCHEDULES)], index // len(SCHEDULES)
        run = client.create_run(experiment_id, run_name=f"{schedule}-s{seed}", start_time=now)
        run_id = run.info.run_id
        params = [Param("schedule.name", schedule), Param("seed", str(seed))]
        client.log_batch(run_id, params=params, tags=[RunTag("schedule", schedule)])
        decay = 1 + index % len(SCHEDULES)
        metrics = [Metric("lr", 0.1 * math.exp(-decay * t / steps), now, t) for t in range(steps)]
        for t in range(val_every, steps + 1, val_every):
            accuracy = 0.9 + 0.09 * t / steps - 0.001 * decay
            metrics += [
                Metric("val/acc", accuracy, now, t),
                Metric("val/loss", 1 - accuracy, now, t),
            ]
        metrics.append(Metric("test/acc", 0.95, now, steps))
        for start in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + BATCH])
        client.set_terminated(run_id, "FINISHED", end_time=now + steps)


def timed_compare(uri: str, out_dir: Path, bulk: bool) -> float:
    """Seconds one full :func:`compare` (histories, tables and figure) takes."""
    start = time.perf_counter()
    compare(uri, experiment=EXPERIMENT, out_dir=out_dir, bulk=bulk)
    return time.perf_counter() - start


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_compare", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10_000, help="lr points per run")
    parser.add_argument("--val-every", type=int, default=100, help="steps between val points")
    args = parser.parse_args(argv)
    for name in ("runs", "steps", "val_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Fill a store, time both readers, check they agree and print the table."""
    args = parse_args(argv)
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="lrexp-bench-compare-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root}/mlflow.db"
        start = time.perf_counter()
        fill_store(uri, args.runs, args.steps, args.val_every)
        fill_seconds = time.perf_counter() - start
        direct = timed_compare(uri, root / "direct", bulk=True)
        client = timed_compare(uri, root / "client", bulk=False)
        same = (root / "direct" / "summary.csv").read_text() == (
            root / "client" / "summary.csv"
        ).read_text()
    points = args.runs * args.steps
    print(
        f"store: {args.runs} runs x {args.steps} lr points ({points} points), "
        f"filled in {fill_seconds:.1f} s"
    )
    print("| reader | compare s |")
    print("|---|---:|")
    print(f"| direct SQLite (lrexp-compare's default) | {direct:.2f} |")
    print(f"| MlflowClient.get_metric_history, 8 threads | {client:.2f} |")
    print(f"client / direct: {client / direct:.1f}x; same summary.csv: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit("bench_compare: the two readers disagree")


if __name__ == "__main__":
    main()
