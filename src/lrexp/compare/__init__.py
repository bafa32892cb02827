"""Compare finished runs from an MLflow store: one figure and a per-configuration summary.

``lrexp-compare --tracking-uri URI (--experiment NAME | --parent RUN_ID | --filter STR)
--out DIR [--group-by PARAM]`` writes ``DIR/comparison.png``, ``DIR/summary.md`` and
``DIR/summary.csv``. :func:`compare` does the same in-process.

Modules
    ``common``: :class:`CompareError`, history types, ``is_lr_key``.
    ``store``: open the tracking store, select runs, read metric histories (SQLite or client).
    ``records``: :class:`~lrexp.compare.records.RunRecord`, configurations, deduplication.
    ``table``: per-run numbers and the mean/std rows of the summary.
    ``report``: ``summary.csv`` and ``summary.md``.
    ``core``: :func:`compare`, which runs all of the above and draws the figure.
    ``cli``: ``parse_args`` and ``main`` (the ``lrexp-compare`` console script).
"""

from lrexp.compare.cli import main
from lrexp.compare.common import CompareError
from lrexp.compare.core import compare

__all__ = ["CompareError", "compare", "main"]
