"""Compare finished runs from an MLflow store: one figure and a per-configuration summary.

``lrexp-compare --tracking-uri URI (--experiment NAME | --parent RUN_ID | --filter STR)
--out DIR [--group-by PARAM]`` writes ``DIR/comparison.png``, ``DIR/summary.md`` and
``DIR/summary.csv``. :func:`compare` does the same in-process.

Configurations
    Runs whose params differ only in the seed form one configuration. Ignored when telling
    configurations apart: ``seed``, params ending in ``seed`` that equal ``seed`` in every
    selected run (``dataset.shuffle_seed: ${seed}``), and bookkeeping params (``paths.*``,
    ``logger.*``, ``dataset.data_dir``, ``ckpt_path``, ``resume``, progress bar and model
    summary settings).
    When one configuration and seed was run several times, only the latest FINISHED run (else
    the latest run) counts; summary.md says how many were left out. ``--group-by KEY`` (a param
    such as ``schedule.name`` or a tag such as ``schedule``) aggregates over everything else.

Numbers
    Per run: final and best ``val/acc`` (and the step of the best), final ``val/loss``,
    ``test/acc``, ``test/loss`` and ms per optimizer step = (end_time - start_time) / number of
    logged LR steps (a run resumed into the same MLflow run also counts the time between
    its attempts). Per configuration: mean and sample std (ddof=1) over the runs that logged
    the metric. The status is the run status, or ``diverged`` for a run tagged ``diverged=true``.

Reading histories
    Full ``lr``/``lr/<group>``, ``val/acc`` and ``val/loss`` histories come straight from the
    ``metrics`` table of ``sqlite://`` stores (read-only, one indexed query per run and key);
    other stores, or a SQLite file whose schema surprises us, go through
    ``MlflowClient.get_metric_history`` in 8 threads. ``scripts/bench_compare.py`` times both
    on 50 runs x 10k ``lr`` points (README: 3.7 s against 46.8 s for the whole comparison).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

Point = tuple[int, float]
History = dict[str, list[Point]]

PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "sweep"  # lrexp.sweep tags its parent runs sweep=parent
VAL_KEYS = ("val/acc", "val/loss")
IGNORED_PREFIXES = ("paths.", "logger.", "callbacks.progress_bar.", "callbacks.model_summary.")
IGNORED_PARAMS = {
    "seed",
    "ckpt_path",
    "resume",
    "dataset.data_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
}
STATUS_ORDER = ("FINISHED", "diverged", "FAILED", "KILLED", "RUNNING", "SCHEDULED")


class CompareError(RuntimeError):
    """A selection or store problem, reported by the CLI as one line (exit status 2)."""


# --------------------------------------------------------------------------------------- store


def is_lr_key(key: str) -> bool:
    return key == "lr" or key.startswith("lr/")


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite://`` URI (None for other schemes)."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(tracking_uri).database
    if not database or database == ":memory:":
        raise CompareError(f"{tracking_uri}: not an MLflow database file")
    return Path(database)


def open_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` for an existing store; never creates or migrates a SQLite file."""
    database = sqlite_path(tracking_uri)
    if database is not None:
        if not database.is_file():
            raise CompareError(f"no MLflow database at {database} (from {tracking_uri})")
        if not has_mlflow_tables(database):
            raise CompareError(f"{database} is not an MLflow tracking database")
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri)
        client.search_experiments(max_results=1)
    except Exception as err:
        message = first_line(err)
        if "Max retries exceeded" in message or "Failed to establish" in message:
            message = "the tracking server does not answer"
        raise CompareError(f"cannot read the MLflow store at {tracking_uri}: {message}") from err
    return client


def has_mlflow_tables(database: Path) -> bool:
    """Whether a SQLite file holds MLflow's ``experiments``, ``runs`` and ``metrics`` tables."""
    import sqlite3

    try:
        con = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return {"experiments", "runs", "metrics"} <= {name for (name,) in rows}


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


def paged(fetch: Callable[[str | None], Any]) -> list[Any]:
    """All items of a paginated MLflow search (``fetch(page_token)`` returns a PagedList)."""
    items: list[Any] = []
    token: str | None = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def search(client: MlflowClient, experiment_ids: list[str], filter_string: str = "") -> list[Run]:
    def fetch(token: str | None) -> Any:
        return client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)

    try:
        return paged(fetch)
    except Exception as err:
        raise CompareError(f"search failed: {first_line(err)}") from err


def select_runs(
    client: MlflowClient,
    *,
    experiment: str | None,
    parent: str | None,
    filter_string: str | None,
) -> tuple[list[Run], str]:
    """The runs to compare and a phrase describing the selection.

    ``experiment`` and ``parent`` exclude each other; ``filter_string`` alone searches every
    active experiment, and with one of them narrows it. Sweep parents (runs tagged
    ``sweep=parent`` or the parent of another selected run) are left out.
    """
    if experiment is not None and parent is not None:
        raise CompareError("give either an experiment or a parent run, not both")
    if experiment is None and parent is None and not filter_string:
        raise CompareError("select runs with an experiment, a parent run id or a filter")
    extra = filter_string or ""
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in paged(lambda t: client.search_experiments(page_token=t)))
            raise CompareError(
                f"unknown experiment {experiment!r} (known: {', '.join(names) or 'none'})"
            )
        runs = search(client, [found.experiment_id], extra)
        what = f"experiment {experiment!r}"
    elif parent is not None:
        if not re.fullmatch(r"[0-9A-Za-z_-]+", parent):
            raise CompareError(f"{parent!r} is not a run id")
        try:
            parent_run = client.get_run(parent)
        except Exception:
            raise CompareError(f"no run with id {parent}") from None
        children = f"tags.`{PARENT_TAG}` = '{parent}'"
        runs = search(
            client,
            [parent_run.info.experiment_id],
            f"{children} and {extra}" if extra else children,
        )
        what = f"children of run {parent}"
        if not runs and not extra:
            raise CompareError(f"run {parent} has no child runs")
    else:
        experiments = paged(lambda t: client.search_experiments(page_token=t))
        runs = search(client, [e.experiment_id for e in experiments], extra)
        what = "all experiments"
    if filter_string:
        what += f" matching {filter_string!r}"
    parents = {r.data.tags.get(PARENT_TAG) for r in runs}
    runs = [
        r for r in runs if r.info.run_id not in parents and r.data.tags.get(SWEEP_TAG) != "parent"
    ]
    if not runs:
        raise CompareError(f"no runs in {what}")
    return runs, what


def sqlite_histories(
    database: Path, run_ids: Sequence[str], keys: Sequence[str]
) -> dict[str, History]:
    """Every point of ``keys`` for ``run_ids``, in step order, read straight from the
    ``metrics`` table of an MLflow SQLite file (read-only connection).

    One query per (run, key) over MLflow's ``(run_uuid, key, step)`` index, returning only step
    and value: Python's per-row cost dominates, and a single ``IN`` query that also returns the
    run id and key of every row measured about twice as slow. ``ORDER BY step`` also steers
    SQLite to that index (without it, it scans the primary key of every run's rows: ~8x slower).
    LR keys are not tie-broken by timestamp (a second LR value at one step changes nothing
    here); the few validation points are, so the last value is the last one logged.
    """
    import sqlite3

    select = "SELECT step, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
    by_step = select + "ORDER BY step"
    by_step_time = select + "ORDER BY step, timestamp"
    out: dict[str, History] = {}
    con = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        for run_id in run_ids:
            history: History = {}
            for key in keys:
                query = by_step if is_lr_key(key) else by_step_time
                rows = con.execute(query, (run_id, key)).fetchall()
                if rows:
                    history[key] = [
                        (step, math.nan if is_nan else value) for step, value, is_nan in rows
                    ]
            out[run_id] = history
    finally:
        con.close()
    return out


def client_histories(
    client: MlflowClient, run_ids: Sequence[str], keys: Sequence[str], workers: int = 8
) -> dict[str, History]:
    """The same as :func:`sqlite_histories` through ``get_metric_history`` (any store)."""

    def one(run_id: str, key: str) -> tuple[str, str, list[Point]]:
        history = client.get_metric_history(run_id, key)
        ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
        return run_id, key, [(int(m.step), float(m.value)) for m in ordered]

    out: dict[str, History] = {run_id: {} for run_id in run_ids}
    jobs = [(run_id, key) for run_id in run_ids for key in keys]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for run_id, key, points in pool.map(lambda job: one(*job), jobs):
            if points:
                out[run_id][key] = points
    return out


def read_histories(
    client: MlflowClient,
    tracking_uri: str,
    run_ids: Sequence[str],
    keys: Sequence[str],
    bulk: bool = True,
) -> dict[str, History]:
    """Full histories of ``keys``: direct SQL on SQLite stores, else (or on failure) the client."""
    database = sqlite_path(tracking_uri)
    if bulk and database is not None and run_ids and keys:
        try:
            return sqlite_histories(database, run_ids, keys)
        except Exception as err:  # an unexpected schema: the slow path still works
            print(
                f"lrexp-compare: direct SQLite read failed ({first_line(err)}); "
                "falling back to get_metric_history",
                file=sys.stderr,
            )
    try:
        return client_histories(client, run_ids, keys)
    except Exception as err:
        raise CompareError(f"reading metric histories failed: {first_line(err)}") from err


# ------------------------------------------------------------------------------------ records


@dataclass
class RunRecord:
    """One selected run with what the summary and the figure need."""

    run_id: str
    name: str
    status: str
    seed: str | None
    params: dict[str, str]
    tags: dict[str, str]
    latest: dict[str, float]
    start_time: int | None
    end_time: int | None
    history: History = field(default_factory=dict)
    identity: tuple[tuple[str, str], ...] = ()

    @property
    def lr(self) -> History:
        return {k: v for k, v in self.history.items() if is_lr_key(k)}

    @property
    def base_name(self) -> str:
        """The run name without its ``-s<seed>`` suffix."""
        if self.seed is not None and self.name.endswith(f"-s{self.seed}"):
            return self.name[: -len(f"-s{self.seed}")]
        return self.name


def to_record(run: Run) -> RunRecord:
    tags = dict(run.data.tags)
    params = dict(run.data.params)
    status = str(run.info.status)
    if tags.get("diverged", "").lower() == "true":
        status = "diverged"
    return RunRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or tags.get("mlflow.runName") or run.info.run_id[:8],
        status=status,
        seed=params.get("seed", tags.get("seed")),
        params=params,
        tags=tags,
        latest=dict(run.data.metrics),
        start_time=run.info.start_time,
        end_time=run.info.end_time,
    )


def seed_linked(records: Sequence[RunRecord]) -> set[str]:
    """Params named ``*seed`` that equal the run's seed in every run (``${seed}`` copies)."""
    keys = {k for r in records for k in r.params if k.endswith("seed") and k != "seed"}
    return {
        key
        for key in keys
        if all(r.seed is not None and r.params.get(key) == r.seed for r in records)
    }


def assign_identities(records: Sequence[RunRecord]) -> None:
    """Set ``record.identity``: what makes a configuration, everything but the seed."""
    linked = seed_linked(records)
    for r in records:
        kept = {
            k: v
            for k, v in r.params.items()
            if k not in IGNORED_PARAMS and k not in linked and not k.startswith(IGNORED_PREFIXES)
        }
        r.identity = tuple(sorted(kept.items())) if kept else (("run", r.base_name),)


def deduplicate(records: Sequence[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
    """Keep one run per (configuration, seed): the latest FINISHED one, else the latest one."""
    best: dict[tuple[Any, ...], RunRecord] = {}
    dropped: list[RunRecord] = []

    def rank(r: RunRecord) -> tuple[bool, int]:
        return (r.status == "FINISHED", r.start_time or 0)

    for r in records:
        key = (r.identity, r.seed if r.seed is not None else r.run_id)
        if key in best:
            keep, drop = (r, best[key]) if rank(r) > rank(best[key]) else (best[key], r)
            best[key] = keep
            dropped.append(drop)
        else:
            best[key] = r
    kept_ids = {r.run_id for r in best.values()}
    return [r for r in records if r.run_id in kept_ids], dropped


def varying_params(records: Sequence[RunRecord]) -> list[str]:
    """Identity params whose value is not the same in every record."""
    keys = sorted({k for r in records for k, _ in r.identity})
    values = [dict(r.identity) for r in records]
    return [k for k in keys if len({v.get(k) for v in values}) > 1]


def config_labels(records: Sequence[RunRecord]) -> dict[tuple[tuple[str, str], ...], str]:
    """A readable label per configuration: the run name without the seed, plus the params that
    tell apart configurations sharing that name."""
    by_identity: dict[tuple[tuple[str, str], ...], RunRecord] = {}
    for r in records:
        by_identity.setdefault(r.identity, r)
    names: dict[str, list[RunRecord]] = defaultdict(list)
    for r in by_identity.values():
        names[r.base_name].append(r)
    labels = {}
    for base, members in names.items():
        differing = varying_params(members)
        for r in members:
            params = dict(r.identity)
            extra = ", ".join(f"{k}={params.get(k, '-')}" for k in differing)
            labels[r.identity] = f"{base} [{extra}]" if extra else base
    return labels


def lookup(record: RunRecord, key: str) -> str | None:
    """A param, else a tag (``params.``/``tags.`` prefixes select explicitly)."""
    if key.startswith("params."):
        return record.params.get(key[len("params.") :])
    if key.startswith("tags."):
        return record.tags.get(key[len("tags.") :])
    return record.params.get(key, record.tags.get(key))


# ------------------------------------------------------------------------------------ summary


METRICS: tuple[tuple[str, str, str], ...] = (
    # (csv name, markdown header, number format)
    ("best_val_acc", "best val/acc", ".4f"),
    ("best_val_acc_step", "step of best", ".0f"),
    ("final_val_acc", "final val/acc", ".4f"),
    ("final_val_loss", "final val/loss", ".4f"),
    ("test_acc", "test/acc", ".4f"),
    ("test_loss", "test/loss", ".4f"),
    ("ms_per_step", "ms/step", ".2f"),
)


def last_value(points: Sequence[Point]) -> float | None:
    return points[-1][1] if points else None


def run_numbers(r: RunRecord) -> dict[str, float | None]:
    """The per-run numbers of :data:`METRICS` (None where the run did not log them)."""
    acc = r.history.get("val/acc", [])
    finite = [(step, value) for step, value in acc if math.isfinite(value)]
    best = max(finite, key=lambda p: p[1]) if finite else None  # first step reaching the max
    lr_steps = max((len({s for s, _ in pts}) for pts in r.lr.values()), default=0)
    wall = (
        r.end_time - r.start_time
        if r.end_time is not None and r.start_time is not None and r.end_time >= r.start_time
        else None
    )
    return {
        "best_val_acc": best[1] if best else None,
        "best_val_acc_step": float(best[0]) if best else None,
        "final_val_acc": last_value(acc),
        "final_val_loss": last_value(r.history.get("val/loss", [])),
        "test_acc": r.latest.get("test/acc"),
        "test_loss": r.latest.get("test/loss"),
        "ms_per_step": wall / lr_steps if wall is not None and lr_steps else None,
    }


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1; None for fewer than two values). NaN propagates."""
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var) if math.isfinite(var) else math.nan


def status_text(records: Sequence[RunRecord]) -> str:
    """``FINISHED`` when all agree, else counts such as ``2 FINISHED, 1 diverged``."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r.status] += 1
    if len(counts) == 1:
        return next(iter(counts))
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    ranked = sorted(counts, key=lambda s: (order.get(s, len(order)), s))
    return ", ".join(f"{counts[s]} {s}" for s in ranked)


@dataclass
class Row:
    """One line of the summary: a configuration, or a ``--group-by`` value."""

    label: str
    records: list[RunRecord]
    numbers: dict[str, tuple[float | None, float | None]]
    value: str = ""
    params: dict[str, str] = field(default_factory=dict)
    n_configs: int = 1

    @property
    def sort_key(self) -> tuple[bool, float, str]:
        best = self.numbers["best_val_acc"][0]
        missing = best is None or not math.isfinite(best)
        return (missing, -(best or 0.0) if not missing else 0.0, self.label)


def make_row(label: str, records: list[RunRecord]) -> Row:
    per_run = [run_numbers(r) for r in records]
    numbers = {}
    for name, _, _ in METRICS:
        numbers[name] = mean_std([v for n in per_run if (v := n[name]) is not None])
    return Row(label, records, numbers)


def build_rows(records: Sequence[RunRecord], group_by: str | None) -> list[Row]:
    groups: dict[Any, list[RunRecord]] = defaultdict(list)
    labels: dict[Any, str] = {}
    varying = varying_params(records)
    if group_by is None:
        names = config_labels(records)
        for r in records:
            groups[r.identity].append(r)
            labels[r.identity] = names[r.identity]
    else:
        if all(lookup(r, group_by) is None for r in records):
            raise CompareError(f"--group-by {group_by}: no selected run has this param or tag")
        for r in records:
            value = lookup(r, group_by)
            groups[value].append(r)
            labels[value] = f"{group_by}={value if value is not None else '(unset)'}"
    rows = []
    for key, members in groups.items():
        row = make_row(labels[key], members)
        row.value = labels[key].split("=", 1)[-1] if group_by is not None else labels[key]
        row.n_configs = len({r.identity for r in members})
        if group_by is None:
            row.params = {k: dict(members[0].identity).get(k, "") for k in varying}
        rows.append(row)
    return sorted(rows, key=lambda row: row.sort_key)


def fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    return format(value, spec)


def fmt_pair(pair: tuple[float | None, float | None], spec: str) -> str:
    mean, std = pair
    return fmt(mean, spec) if std is None else f"{fmt(mean, spec)} ± {fmt(std, spec)}"


def seeds_of(records: Iterable[RunRecord]) -> str:
    seeds = {r.seed for r in records if r.seed is not None}
    return " ".join(sorted(seeds, key=lambda s: (len(s), s)))


def write_csv(rows: Sequence[Row], path: Path, group_by: str | None) -> None:
    param_keys = list(rows[0].params) if rows and group_by is None else []
    header = ["configuration", "n_seeds", "seeds", "status"]
    if group_by is not None:
        header.insert(1, "n_configs")
    for name, _, _ in METRICS:
        header += [f"{name}_mean", f"{name}_std"]
    header += [*param_keys, "run_ids"]

    def num(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            line: list[Any] = [row.label, len(row.records), seeds_of(row.records)]
            line.append(status_text(row.records))
            if group_by is not None:
                line.insert(1, row.n_configs)
            for name, _, _ in METRICS:
                mean, std = row.numbers[name]
                line += [num(mean), num(std)]
            line += [row.params.get(k, "") for k in param_keys]
            line.append(" ".join(r.run_id for r in row.records))
            writer.writerow(line)


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(
    rows: Sequence[Row],
    path: Path,
    *,
    title: str,
    n_runs: int,
    dropped: Sequence[RunRecord],
    group_by: str | None,
) -> None:
    headers = ["configuration" if group_by is None else group_by]
    if group_by is not None:
        headers.append("configs")
    headers += ["seeds" if group_by is None else "runs", "status"]
    headers += [md for _, md, _ in METRICS]
    table = []
    for row in rows:
        cells = [md_cell(row.value)]
        if group_by is not None:
            cells.append(str(row.n_configs))
        cells += [str(len(row.records)), md_cell(status_text(row.records))]
        cells += [fmt_pair(row.numbers[name], spec) for name, _, spec in METRICS]
        table.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in table)) for i, h in enumerate(headers)]
    numeric = [h not in {headers[0], "status"} for h in headers]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if right else "-" * (w + 2)
            for w, right in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    lines = [f"# {title}", ""]
    if group_by is None:
        what = "configuration (runs differing only in seed)"
        over = "over seeds when there are several"
    else:
        what = f"value of {group_by} (all its configurations and seeds)"
        over = "over the runs of a row"
    lines.append(
        f"{n_runs} run{'s' * (n_runs != 1)}, {len(rows)} row{'s' * (len(rows) != 1)}: "
        f"one per {what}. Numbers are mean ± sample std {over}; sorted by best val/acc."
    )
    lines.append("")
    lines += [line(headers), rule, *(line(cells) for cells in table), ""]
    if dropped:
        lines.append(
            f"{len(dropped)} repeated run(s) of an already counted configuration and seed were "
            "left out (the latest FINISHED run counts): "
            + ", ".join(f"{r.name} ({r.run_id[:8]}, {r.status})" for r in dropped)
        )
        lines.append("")
    lines += [
        "`step of best` is the optimizer step of the highest val/acc; `ms/step` is the run's "
        "wall time (start to end, data loading and test included) over its LR steps.",
        "",
        "![comparison](comparison.png)",
        "",
    ]
    path.write_text("\n".join(lines))


# --------------------------------------------------------------------------------- entry point


def compare(
    tracking_uri: str,
    *,
    experiment: str | None = None,
    parent: str | None = None,
    filter_string: str | None = None,
    out_dir: str | Path,
    group_by: str | None = None,
    bulk: bool = True,
) -> Path:
    """Write ``comparison.png``, ``summary.md`` and ``summary.csv`` into ``out_dir``.

    Select runs by ``experiment`` name or by ``parent`` run id (its children), optionally
    narrowed by an MLflow ``filter_string`` (which alone searches every experiment). Returns
    ``out_dir``. Raises :class:`CompareError` for an unknown experiment, a parent without
    children, a filter matching nothing or an unreadable store. ``bulk=False`` forces the
    ``get_metric_history`` path.
    """
    from lrexp.plots import Series, plot_comparison
    from lrexp.tracking.store import mark_dead_runs_killed

    client = open_client(tracking_uri)
    runs, what = select_runs(
        client, experiment=experiment, parent=parent, filter_string=filter_string
    )
    mark_dead_runs_killed(client, runs)  # e.g. SIGKILLed runs left RUNNING
    records = [to_record(run) for run in runs]
    records.sort(key=lambda r: (r.start_time or 0, r.name))
    assign_identities(records)
    records, dropped = deduplicate(records)

    keys = sorted({k for r in records for k in r.latest if is_lr_key(k) or k in VAL_KEYS})
    histories = read_histories(client, tracking_uri, [r.run_id for r in records], keys, bulk)
    for r in records:
        r.history = histories.get(r.run_id, {})

    rows = build_rows(records, group_by)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"lrexp comparison: {what}" + (f", grouped by {group_by}" if group_by else "")
    write_csv(rows, out / "summary.csv", group_by)
    write_markdown(
        rows,
        out / "summary.md",
        title=title,
        n_runs=len(records),
        dropped=dropped,
        group_by=group_by,
    )
    single = all(len(row.records) == 1 for row in rows) and group_by is None
    series = [
        Series(
            label=r.name if single else row.label,
            lr=r.lr,
            val_acc=r.history.get("val/acc", []),
            val_loss=r.history.get("val/loss", []),
        )
        for row in rows
        for r in row.records
    ]
    plot_comparison(series, out / "comparison.png", f"{title} ({len(records)} runs)")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lrexp-compare",
        description="Compare MLflow runs: LR traces, val curves and a per-configuration summary.",
    )
    parser.add_argument("--tracking-uri", required=True, help="e.g. sqlite:///mlruns/mlflow.db")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME", help="every run of this experiment")
    which.add_argument("--parent", metavar="RUN_ID", help="the child runs of this sweep run")
    parser.add_argument(
        "--filter",
        dest="filter_string",
        metavar="STR",
        help="MLflow search filter, e.g. \"params.`optimizer.name` = 'sgd'\"; alone it "
        "searches every experiment, with --experiment/--parent it narrows them",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument(
        "--group-by",
        metavar="KEY",
        help="aggregate over everything but this param (e.g. schedule.name) or tag (schedule)",
    )
    args = parser.parse_args(argv)
    if args.experiment is None and args.parent is None and not args.filter_string:
        parser.error("one of --experiment, --parent or --filter is required")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """``lrexp-compare``: problems with the store or the selection exit 2 with one line."""
    args = parse_args(argv)
    # A dead tracking server should fail in seconds, not after MLflow's default minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        out = compare(
            args.tracking_uri,
            experiment=args.experiment,
            parent=args.parent,
            filter_string=args.filter_string,
            out_dir=args.out,
            group_by=args.group_by,
        )
    except CompareError as err:
        print(f"lrexp-compare: error: {err}", file=sys.stderr)
        sys.exit(2)
    for name in ("summary.md", "summary.csv", "comparison.png"):
        print(out / name)


if __name__ == "__main__":
    main()
