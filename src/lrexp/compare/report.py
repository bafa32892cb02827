"""Writing the summary: ``summary.csv`` and the aligned Markdown table of ``summary.md``."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
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
