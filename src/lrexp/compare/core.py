"""The in-process entry point :func:`compare`: select, read, aggregate and write the report."""

from __future__ import annotations

from pathlib import Path

from lrexp.compare.common import is_lr_key
from lrexp.compare.histories import read_histories
from lrexp.compare.records import assign_identities, deduplicate, to_record
from lrexp.compare.report import write_csv, write_markdown
from lrexp.compare.store import open_client, select_runs
from lrexp.compare.table import build_rows

VAL_KEYS = ("val/acc", "val/loss")


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
