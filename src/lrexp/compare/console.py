"""The verdict table for a terminal: what ``lrexp-compare`` and a finished sweep print first,
so that the verdict is read where the command ran, not only inside ``summary.md``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

COLUMNS = ("configuration", "verdict", "n", "mean", "Δ", "95% CI of Δ", "Holm p")


def _number(value: Any, signed: bool = False) -> str:
    if value is None or value == "inf" or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _row(configuration: dict[str, Any], baseline: str) -> list[str]:
    if configuration["label"] == baseline:
        ci, delta, holm = "–", "–", "–"
    else:
        low, high = configuration.get("delta_low"), configuration.get("delta_high")
        both = low is not None and high is not None
        ci = f"[{_number(low, True)}, {_number(high, True)}]" if both else "–"
        delta = _number(configuration.get("delta"), True)
        holm = _number(configuration.get("p_holm"))
    return [
        configuration["label"],
        configuration["verdict"],
        str(configuration["n"]),
        _number(configuration["mean"]),
        delta,
        ci,
        holm,
    ]


def verdict_lines(summary_json: Path) -> list[str]:
    """A heading and an aligned table, one row per configuration, from ``summary.json``."""
    data = json.loads(summary_json.read_text())
    direction = "higher" if data["higher_is_better"] else "lower"
    heading = (
        f"{data['metric_label']} ({direction} is better) against {data['baseline']}; "
        f"verdicts after Holm over {data['family_size']} comparison(s), α = {data['alpha']}"
    )
    rows = [list(COLUMNS), *(_row(c, data["baseline"]) for c in data["configurations"])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    left = {0, 1}  # text columns; numbers align right
    lines = [heading]
    for row in rows:
        cells = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
