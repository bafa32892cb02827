"""Compare finished runs from an MLflow store: verdicts with paired statistics, figures and
reports.

``lrexp-compare --tracking-uri URI (--experiment NAME | --parent RUN_ID | --filter STR)
--out DIR [--metric M] [--baseline LABEL] [--equivalence MARGIN] [--plan-seeds DELTA]
[--group-by KEY]`` writes ``summary.md``, ``summary.csv``, ``summary.json``, ``report.html``
and the figures into ``DIR`` (and, with ``--parent``, into that run's artifacts).
:func:`compare` does the same in-process.

Modules, from reading to writing
    ``common``: :class:`CompareError`, history types, ``is_lr_key``.
    ``store``: open the tracking store, select runs, read metric histories (SQLite or client).
    ``records``: :class:`~lrexp.compare.records.RunRecord`, configurations, deduplication.
    ``table``: per-run numbers and the mean/std rows of the descriptive table.
    ``outcomes``: the tested per-run number (``--metric``).
    ``pairing``: whether two configurations are proven paired by their digest tags.
    ``stats``: the statistics on arrays (describe, pairwise, family, power, ranking).
    ``analysis``: configurations -> verdict table and ranking (the glue).
    ``columns``: the verdict table's columns, legend and rows.
    ``figures``, ``figures_rank``: forest plot, learning curves; per-seed lines, heatmap,
    critical-difference diagram.
    ``descriptive``, ``report``, ``html``: the descriptive table; ``summary.md/.csv/.json``;
    ``report.html``.
    ``core``: :func:`compare`, which runs all of the above.
    ``cli``: ``parse_args`` and ``main`` (the ``lrexp-compare`` console script).
"""

from lrexp.compare.cli import main
from lrexp.compare.common import CompareError
from lrexp.compare.core import compare

__all__ = ["CompareError", "compare", "main"]
