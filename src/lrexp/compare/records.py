"""Run records: one per selected run, grouped into configurations and deduplicated.

Configurations
    Runs whose params differ only in the seed form one configuration. Ignored when telling
    configurations apart: ``seed``, params ending in ``seed`` that equal ``seed`` in every
    selected run (``dataset.shuffle_seed: ${seed}``), and bookkeeping params (``paths.*``,
    ``logger.*``, ``dataset.data_dir``, ``ckpt_path``, ``resume``, progress bar and model
    summary settings, and a fork's ``fork.from``: each seed forks its own trunk).
    When one configuration and seed was run several times, only the latest FINISHED run (else
    the latest run) counts; summary.md says how many were left out. ``--group-by KEY`` (a param
    such as ``schedule.name`` or a tag such as ``schedule``) aggregates over everything else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lrexp.compare.common import History, is_lr_key

if TYPE_CHECKING:
    from mlflow.entities import Run

IGNORED_PREFIXES = ("paths.", "logger.", "callbacks.progress_bar.", "callbacks.model_summary.")
IGNORED_PARAMS = {
    "seed",
    "ckpt_path",
    "resume",
    "dataset.data_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "fork.from",  # each seed's fork starts from that seed's trunk
}


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
