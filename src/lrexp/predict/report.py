"""The ``check`` report: Markdown, JSON, a figure of predicted over observed curves and one
self-contained HTML page (lrexp-compare's HTML helpers)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrexp.predict.check import CheckResult, by_label
from lrexp.predict.laws import Curve, make_law, predict_curve

COLUMNS = (
    "law",
    "held out",
    "predicted final",
    "95% interval",
    "measured final",
    "abs error",
    "rel error",
    "predicted gap",
    "measured gap",
    "verdict",
    "order agrees",
)


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}g}"


def rows(results: Sequence[CheckResult]) -> list[list[str]]:
    out = []
    for r in results:
        for h in r.held_out:
            interval = f"[{_num(h.interval[0])}, {_num(h.interval[1])}]" if h.interval else "–"
            agrees = "–" if h.agrees is None else ("yes" if h.agrees else "no")
            out.append(
                [
                    r.law,
                    h.label,
                    _num(h.predicted),
                    interval,
                    _num(h.measured),
                    f"{h.abs_error:+.3g}",
                    f"{h.rel_error:+.2%}",
                    f"{h.predicted_gap:+.3g}",
                    f"{h.measured_gap:+.3g}",
                    h.verdict or "–",
                    agrees,
                ]
            )
    return out


def summary_lines(
    results: Sequence[CheckResult],
    title: str,
    warnings: Sequence[str],
    loss: str = "training loss",
) -> list[str]:
    """The Markdown report; ``loss`` names what was fitted (the training loss by default)."""
    baseline = results[0].baseline if results else "–"
    lines = [
        f"# {title}",
        "",
        f"Leave one schedule out: each law is fitted on every other schedule and predicts the "
        f"held-out one's final {loss}. Gaps are to the baseline **{baseline}** (lower "
        f"loss is better); the verdict is lrexp-compare's on the final {loss}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    for r in results:
        errors = [abs(h.rel_error) for h in r.held_out]
        judged = [h.agrees for h in r.held_out if h.agrees is not None]
        agree = f"{sum(judged)}/{len(judged)}" if judged else "no better/worse verdict"
        lines += [
            "",
            f"- **{r.law}**: mean |relative error| of the final loss "
            f"{float(np.mean(errors)):.2%}, largest {max(errors):.2%}; order agrees with the "
            f"verdict: {agree}",
        ]
    lines += ["", "## Trust checks", ""]
    lines += [f"- {w}" for w in warnings] or ["- all passed"]
    return lines


def write_json(results: Sequence[CheckResult], warnings: Sequence[str], path: Path) -> None:
    data: dict[str, Any] = {"warnings": list(warnings), "laws": []}
    for r in results:
        data["laws"].append(
            {
                "law": r.law,
                "baseline": r.baseline,
                "held_out": [
                    {
                        "label": h.label,
                        "predicted": h.predicted,
                        "interval": list(h.interval) if h.interval else None,
                        "measured": h.measured,
                        "seed_sd": None if math.isnan(h.seed_sd) else h.seed_sd,
                        "abs_error": h.abs_error,
                        "rel_error": h.rel_error,
                        "predicted_gap": h.predicted_gap,
                        "measured_gap": h.measured_gap,
                        "verdict": h.verdict,
                        "agrees": h.agrees,
                        "params": r.fits[h.label].params,
                    }
                    for h in r.held_out
                ],
            }
        )
    path.write_text(json.dumps(data, indent=2))


def curves_figure(
    results: Sequence[CheckResult],
    curves: Sequence[Curve],
    path: Path,
    loss: str = "training loss",
) -> Path:
    """One panel per held-out schedule: observed curves (grey) and each law's prediction."""
    from lrexp.plots import log_scale, new_figure

    groups = by_label(curves)
    held = [h.label for h in results[0].held_out] if results else []
    fig = new_figure(5.0 * max(1, len(held)), 4.0)
    for i, label in enumerate(held):
        ax = fig.add_subplot(1, len(held), i + 1)
        for c in groups[label]:
            ax.plot(c.steps, c.loss, color="0.6", lw=1)
        for r, style in zip(results, ("-", "--", ":"), strict=False):
            law = make_law(r.law)
            c = groups[label][0]
            steps = np.unique(np.linspace(c.steps[0], len(c.lrs), 300).astype(int))
            theta = r.fits[label].theta
            ax.plot(steps, predict_curve(law, theta, c.lrs, steps), style, label=r.law)
        log_scale(ax)
        ax.set_title(f"held out: {label}")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(loss)
        ax.legend()
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_html(lines: Sequence[str], figure_name: str, out_dir: Path, path: Path) -> None:
    """The Markdown report as a page, its table as an HTML table, the figure inlined."""
    from lrexp.compare.html import STYLE, figure, markdownish

    parts = []
    table: list[str] = []
    for line in lines:
        if line.startswith("|"):
            if not line.startswith("|---"):
                table.append(line)
            continue
        if table:
            head, *body = [row.strip("|").split(" | ") for row in table]
            parts.append(
                "<table><thead><tr>"
                + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head)
                + "</tr></thead><tbody>"
                + "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>"
                    for row in body
                )
                + "</tbody></table>"
            )
            table = []
        parts.append(markdownish(line))
    parts.append(figure(out_dir, figure_name, "predicted (lines) over observed (grey) curves"))
    title = html.escape(lines[0].lstrip("# "))
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body>" + "\n".join(p for p in parts if p) + "</body></html>"
    )
    path.write_text(page, encoding="utf-8")
