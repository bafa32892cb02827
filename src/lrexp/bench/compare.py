"""Benchmark ``lrexp-compare`` on a large sweep: SQLite, PostgreSQL and a tracking server.

``python scripts/bench_compare.py [--runs 50] [--steps 10000]`` writes a throw-away SQLite
store holding ``--runs`` finished runs with an ``lr`` point at every step and validation
metrics every ``--val-every`` steps, and the same runs into a throw-away PostgreSQL database
served by ``mlflow server`` (:mod:`lrexp.tracking.localserver`; skipped with a note when PostgreSQL
is not installed). It times :func:`lrexp.compare.compare` over the SQLite file (direct reads,
and ``MlflowClient.get_metric_history`` unless ``--skip-client``), over the PostgreSQL
database (direct reads) and over the server: the runs' history files, logged as lrexp logs
them when a run ends, and the bulk endpoint alone (as for runs without one). Readers of one
store must write the same ``summary.csv``; the script prints seconds and ratios to direct
SQLite.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lrexp.cli import quiet_logs
from lrexp.compare import compare

EXPERIMENT = "bench-compare"
SCHEDULES = ("cosine", "step", "exponential", "linear", "onecycle")
BATCH = 1000  # MLflow's limit of metrics per log_batch request


def fill_store(
    uri: str, runs: int, steps: int, val_every: int, experiment_id: str | None = None
) -> list[str]:
    """Log ``runs`` finished runs of ``steps`` LR points each, as a sweep of schedules x seeds,
    into a new experiment (or ``experiment_id``); their ids."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = experiment_id or client.create_experiment(EXPERIMENT)
    run_ids = []
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
        run_ids.append(run_id)
    return run_ids


def log_history_files(database_uri: str, server_url: str, run_ids: Sequence[str]) -> None:
    """End each run as lrexp ends one: its histories read back (here straight from the
    database, which is quicker) and logged through the server as its history file."""
    from lrexp.tracking.artifacts import log_history_file, stored_histories
    from lrexp.tracking.store import TrackedRun

    with tempfile.TemporaryDirectory(prefix="lrexp-history-files-") as tmp:
        for run_id in run_ids:
            stored = stored_histories(TrackedRun(database_uri, EXPERIMENT, "", {}, run_id=run_id))
            folder = Path(tmp) / run_id
            folder.mkdir()
            served = TrackedRun(server_url, EXPERIMENT, "", {}, run_id=run_id)
            log_history_file(served, stored, folder)


def timed_compare(uri: str, out_dir: Path, bulk: bool, history_files: bool = True) -> float:
    """Seconds one full :func:`compare` (histories, tables and figure) takes."""
    start = time.perf_counter()
    compare(uri, experiment=EXPERIMENT, out_dir=out_dir, bulk=bulk, history_files=history_files)
    return time.perf_counter() - start


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_compare", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10_000, help="lr points per run")
    parser.add_argument("--val-every", type=int, default=100, help="steps between val points")
    parser.add_argument(
        "--server-workers", type=int, default=4, help="mlflow server --workers (its default: 4)"
    )
    parser.add_argument(
        "--skip-client", action="store_true", help="skip the slow get_metric_history reader"
    )
    args = parser.parse_args(argv)
    for name in ("runs", "steps", "val_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def postgres_rows(root: Path, args: argparse.Namespace) -> list[tuple[str, float, Path]]:
    """Fill a PostgreSQL database like the SQLite store, serve it, time direct and HTTP reads
    (from the runs' history files, and through the bulk endpoint alone)."""
    from mlflow.tracking import MlflowClient

    from lrexp.tracking.localserver import MlflowServer, Postgres, postgres_bin

    if postgres_bin() is None:
        print("no PostgreSQL found (apt-get install -y postgresql): PostgreSQL rows skipped")
        return []
    cluster = Postgres(Path(tempfile.mkdtemp(prefix="lrexp-pg-")))
    server: MlflowServer | None = None
    try:
        uri = cluster.new_database("bench_compare")
        server = MlflowServer(uri, root / "server", workers=args.server_workers).start()
        start = time.perf_counter()
        # the experiment comes from the server, so its runs keep their artifacts there
        experiment_id = MlflowClient(server.url).create_experiment(EXPERIMENT)
        run_ids = fill_store(uri, args.runs, args.steps, args.val_every, experiment_id)
        log_history_files(uri, server.url, run_ids)
        print(f"PostgreSQL store filled in {time.perf_counter() - start:.1f} s")
        workers = f"mlflow server on PostgreSQL, {args.server_workers} workers"
        return [
            ("direct PostgreSQL (psycopg)", timed_compare(uri, root / "pg", True), root / "pg"),
            (f"HTTP, history files ({workers})",
             timed_compare(server.url, root / "http", True), root / "http"),
            (f"HTTP, bulk endpoint only ({workers})",
             timed_compare(server.url, root / "bulk", True, history_files=False), root / "bulk"),
        ]  # fmt: skip
    finally:
        if server is not None:
            server.kill()
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


def same_summaries(folders: list[Path]) -> bool:
    texts = {(folder / "summary.csv").read_text() for folder in folders}
    return len(texts) == 1


def main(argv: Sequence[str] | None = None) -> None:
    """Fill the stores, time every reader, check they agree and print the table."""
    args = parse_args(argv)
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="lrexp-bench-compare-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root}/mlflow.db"
        start = time.perf_counter()
        fill_store(uri, args.runs, args.steps, args.val_every)
        fill_seconds = time.perf_counter() - start
        rows = [("direct SQLite (lrexp-compare's default)", timed_compare(uri, root / "d", True),
                 root / "d")]  # fmt: skip
        if not args.skip_client:
            client = timed_compare(uri, root / "client", bulk=False)
            rows.append(("MlflowClient.get_metric_history, 8 threads", client, root / "client"))
        sqlite_same = same_summaries([folder for _, _, folder in rows])
        server_rows = postgres_rows(root, args)
        server_same = same_summaries([folder for _, _, folder in server_rows] or [root / "d"])
        all_same = same_summaries([folder for _, _, folder in rows + server_rows])
    points = args.runs * args.steps
    print(
        f"store: {args.runs} runs x {args.steps} lr points ({points} points), "
        f"SQLite filled in {fill_seconds:.1f} s"
    )
    direct = rows[0][1]
    print("| reader | compare s | / direct SQLite |")
    print("|---|---:|---:|")
    for name, seconds, _ in rows + server_rows:
        print(f"| {name} | {seconds:.2f} | {seconds / direct:.2f}x |")
    print(
        f"same summary.csv: SQLite readers {'yes' if sqlite_same else 'NO'}; "
        f"PostgreSQL direct vs HTTP {'yes' if server_same else 'NO'}; "
        f"all stores {'yes' if all_same else 'no'}"
    )
    if not (sqlite_same and server_same):
        raise SystemExit("bench_compare: readers of one store disagree")


if __name__ == "__main__":
    main()
