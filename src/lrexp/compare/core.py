"""The in-process entry point :func:`compare`: select, read, analyse, draw and write."""

from __future__ import annotations

import sys
from pathlib import Path

from lrexp.compare.common import CompareError, is_lr_key
from lrexp.compare.envelope import write_envelope
from lrexp.compare.histories import read_histories
from lrexp.compare.records import RunRecord, assign_identities, deduplicate, to_record
from lrexp.compare.store import first_line, open_client, select_runs
from lrexp.compare.table import build_rows
from lrexp.tracking.history_file import TOKEN_TAG

VAL_KEYS = ("val/acc", "val/loss")
REPORT_FILES = ("summary.md", "summary.csv", "summary.json", "report.html")
OVERLAY_MAX = 10  # configurations up to which comparison.png overlays every run


def overlay(records: list[RunRecord], group_by: str | None, path: Path, title: str) -> None:
    """``comparison.png``: every run's LR, val/acc and val/loss in one figure."""
    from lrexp.plots import Series, plot_comparison

    rows = build_rows(records, group_by)
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
    plot_comparison(series, path, title)


def compare(
    tracking_uri: str,
    *,
    experiment: str | None = None,
    parent: str | None = None,
    filter_string: str | None = None,
    out_dir: str | Path,
    group_by: str | None = None,
    bulk: bool = True,
    metric: str | None = None,
    target: float | None = None,
    baseline: str | None = None,
    equivalence: float | None = None,
    plan_seeds: float | None = None,
    test: str = "auto",
    log_to_parent: bool = True,
    artifact_path: str | None = None,
    history_files: bool = True,
) -> Path:
    """Write the verdict report (``summary.md``, ``summary.csv``, ``summary.json``,
    ``report.html``) and its figures into ``out_dir`` (with cooldown forks among the runs,
    also ``envelope.png`` and ``envelope.md``); with ``parent``, also log them to
    that run's artifacts, under ``artifact_path`` (the root by default), unless
    ``log_to_parent`` is false.

    Select runs by ``experiment`` name or by ``parent`` run id (its children), optionally
    narrowed by an MLflow ``filter_string`` (which alone searches every experiment). Returns
    ``out_dir``. Raises :class:`CompareError` for an unknown experiment, a parent without
    children, a filter matching nothing, an unreadable store or a bad option. ``bulk=False``
    forces the ``get_metric_history`` path; ``test`` picks the test of Δ = 0
    (:data:`lrexp.compare.stats.pairwise.TESTS`); ``history_files=False`` makes a tracking server's
    runs be read through its bulk endpoint even where they have a history file.
    """
    from lrexp.compare import figures, figures_rank
    from lrexp.compare.analysis import analyse
    from lrexp.compare.html import write_html
    from lrexp.compare.outcomes import objective_metric, outcome
    from lrexp.compare.report import Report, write_csv, write_json, write_markdown
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
    which = outcome(metric, target, records)

    curves = (*VAL_KEYS, objective_metric(records))
    keys = sorted({k for r in records for k in r.latest if is_lr_key(k) or k in curves})
    vouchers = {
        r.run_id: (r.tags[TOKEN_TAG], r.latest)
        for r in records
        if history_files and TOKEN_TAG in r.tags
    }
    run_ids = [r.run_id for r in records]
    histories = read_histories(client, tracking_uri, run_ids, keys, bulk, vouchers)
    for r in records:
        r.history = histories.get(r.run_id, {})

    rows = build_rows(records, group_by)  # checks --group-by before anything is written
    analysis = analyse(
        records,
        which,
        target=target,
        baseline=baseline,
        equivalence=equivalence,
        plan_delta=plan_seeds,
        panel_key=group_by,
        test=test,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"lrexp comparison: {what}" + (f", grouped by {group_by}" if group_by else "")
    drawn = [
        figures.forest(analysis, out / "forest.png"),
        figures.learning_curves(analysis, out / "learning_curves.png"),
        figures_rank.paired_lines(analysis, out / "paired_seeds.png"),
        figures_rank.heatmap(analysis, out / "beats_heatmap.png"),
        figures_rank.cd_diagram(analysis, out / "cd_diagram.png"),
    ]
    if len(analysis.configs) <= OVERLAY_MAX:
        overlay(records, group_by, out / "comparison.png", f"{title} ({len(records)} runs)")
        drawn.append(out / "comparison.png")
    envelope = write_envelope(records, out, title)  # with cooldown forks: .png and .md
    drawn += [path for path in envelope if path.suffix == ".png"]
    report = Report(
        title=title,
        analysis=analysis,
        rows=rows,
        config_rows=build_rows(records, None),
        n_runs=len(records),
        dropped=dropped,
        group_by=group_by,
        figures=[p.name for p in drawn],
    )
    written = [out / name for name in REPORT_FILES] + drawn
    written += [path for path in envelope if path.suffix == ".md"]
    write_markdown(report, written[0])
    write_csv(report, written[1])
    write_json(report, written[2])
    write_html(report, out, written[3])
    for note in analysis.notes:
        print(f"lrexp-compare: {note}", file=sys.stderr)
    if parent is not None and log_to_parent:
        try:
            for path in written:
                client.log_artifact(parent, str(path), artifact_path)
        except Exception as err:
            raise CompareError(
                f"the report is in {out}, but logging it to run {parent} failed: {first_line(err)}"
            ) from err
    return out
