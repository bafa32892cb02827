"""The descriptive table (mean ± sd of every number per configuration or ``--group-by`` value):
its aligned Markdown lines and its CSV columns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from lrexp.compare.records import RunRecord
from lrexp.compare.table import METRICS, Row, status_text


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


def csv_header(rows: Sequence[Row], group_by: str | None) -> list[str]:
    """The descriptive columns of ``summary.csv``."""
    param_keys = list(rows[0].params) if rows and group_by is None else []
    header = ["n_seeds", "seeds", "status"]
    if group_by is not None:
        header.insert(0, "n_configs")
    for name, _, _ in METRICS:
        header += [f"{name}_mean", f"{name}_std"]
    return [*header, *param_keys, "run_ids"]


def csv_cells(row: Row, param_keys: Sequence[str], group_by: str | None) -> list[Any]:
    """One row's descriptive cells, in the order of :func:`csv_header`."""

    def num(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    line: list[Any] = [len(row.records), seeds_of(row.records), status_text(row.records)]
    if group_by is not None:
        line.insert(0, row.n_configs)
    for name, _, _ in METRICS:
        mean, std = row.numbers[name]
        line += [num(mean), num(std)]
    line += [row.params.get(k, "") for k in param_keys]
    line.append(" ".join(r.run_id for r in row.records))
    return line


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def aligned_table(
    headers: Sequence[str], table: Sequence[Sequence[str]], numeric: Sequence[bool]
) -> list[str]:
    """A Markdown table whose columns line up in plain text; numeric columns right-aligned."""
    widths = [max(len(h), *(len(c[i]) for c in table)) for i, h in enumerate(headers)]

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
    return [line(headers), rule, *(line(cells) for cells in table)]


def markdown_lines(
    rows: Sequence[Row],
    *,
    n_runs: int,
    dropped: Sequence[RunRecord],
    group_by: str | None,
) -> list[str]:
    """The descriptive section of ``summary.md``."""
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
    numeric = [h not in {headers[0], "status"} for h in headers]
    lines = []
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
    lines += [*aligned_table(headers, table, numeric), ""]
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
    ]
    return lines
