"""``report.html``: the whole report in one self-contained page (figures inlined as base64
PNG), which MLflow's artifact view shows on the parent run."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from lrexp.compare import columns
from lrexp.compare.report import FIGURES, Report, header_lines, ranking_lines, seeds_lines

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
td.text { text-align: left; }
tr.better td.verdict { color: #1a9850; font-weight: bold; }
tr.worse td.verdict { color: #d73027; font-weight: bold; }
tr.equivalent td.verdict { color: #4575b4; font-weight: bold; }
tr.baseline td { background: #fafae0; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
"""


def markdownish(line: str) -> str:
    """A line of the Markdown report as HTML (headings, bullets, bold; the rest escaped)."""
    text = html.escape(line.lstrip("#- ").strip().replace("`", ""))
    parts = text.split("**")
    text = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    if line.startswith("## "):
        return f"<h2>{text}</h2>"
    if line.startswith("# "):
        return f"<h1>{text}</h1>"
    if line.startswith("- "):
        return f"<li>{text}</li>"
    return f"<p>{text}</p>" if text else ""


def verdict_table(report: Report) -> str:
    a = report.analysis
    head = "".join(
        f'<th title="{html.escape(c.legend)}">{html.escape(c.header)}</th>' for c in columns.COLUMNS
    )
    body = []
    for raw in columns.rows(a):
        cells = "".join(
            f'<td class="{c.key} {"text" if c.kind == "text" else ""}">{html.escape(v)}</td>'
            for c, v in zip(columns.COLUMNS, columns.cells(a, raw), strict=True)
        )
        body.append(f'<tr class="{html.escape(str(raw.get("verdict", "")))}">{cells}</tr>')
    legend = "".join(f"<li>{html.escape(t.replace('`', ''))}</li>" for t in columns.legend())
    return (
        f'<table id="verdicts"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
        f"</table><ul class='legend'>{legend}</ul>"
    )


def figure(out_dir: Path, name: str, caption: str) -> str:
    data = base64.b64encode((out_dir / name).read_bytes()).decode("ascii")
    stem = name.removesuffix(".png")
    return (
        f'<h3>{html.escape(caption)}</h3><img id="{stem}" alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}">'
    )


def write_html(report: Report, out_dir: Path, path: Path) -> None:
    a = report.analysis
    parts = [markdownish(line) for line in header_lines(report)]
    parts += [f"<h2>Verdicts against {html.escape(a.baseline)}</h2>", verdict_table(report)]
    (headline, headline_text), *others = FIGURES
    parts.append(figure(out_dir, headline, headline_text))
    parts += [markdownish(line) for line in ranking_lines(a) + seeds_lines(a)]
    parts.append("<h2>More figures</h2>")
    parts += [figure(out_dir, name, text) for name, text in others if name in report.figures]
    title = html.escape(report.title)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body>" + "\n".join(p for p in parts if p) + "</body></html>"
    )
    path.write_text(page, encoding="utf-8")
