"""MLflow tag names that training writes and ``lrexp-compare`` reads, kept free of heavy
imports so both sides can share them without loading the other's libraries."""

import json
from collections.abc import Mapping

#: a run whose data module gives no order digest carries this tag; its value says why
ORDER_UNKNOWN_TAG = "order_unknown"
#: the task's objective as ``metric:mode`` (``val/acc:max``), the per-run number compare tests
#: by default, and a JSON map of every logged metric to ``max`` or ``min`` (:mod:`lrexp.tasks`)
OBJECTIVE_TAG, TEST_METRIC_TAG, MODES_TAG = "objective", "test_metric", "metric_modes"


def directions(tags: Mapping[str, str]) -> dict[str, str]:
    """The metric directions a run's tags record (empty for runs logged without a task)."""
    text = tags.get(MODES_TAG)
    return {str(k): str(v) for k, v in json.loads(text).items()} if text else {}
