"""The ``lrexp-compare`` command line: argument parsing and one-line errors (exit status 2)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lrexp.compare.common import CompareError
from lrexp.compare.console import verdict_lines
from lrexp.compare.core import REPORT_FILES, compare
from lrexp.compare.outcomes import OUTCOMES
from lrexp.compare.stats.pairwise import TESTS
from lrexp.tracking.uri import DEFAULT_TRACKING_URI


def number(positive: bool) -> type[float]:
    """An argparse type: a finite float (> 0 when ``positive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or (positive and value <= 0):
            raise argparse.ArgumentTypeError(
                f"must be a finite number{' > 0' if positive else ''}, got {text!r}"
            )
        return value

    return parse  # type: ignore[return-value]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lrexp-compare",
        description="Compare MLflow runs: verdicts with paired statistics, figures, reports.",
    )
    parser.add_argument(
        "--tracking-uri",
        default=DEFAULT_TRACKING_URI,
        help=f"the MLflow store (default: {DEFAULT_TRACKING_URI}, where training writes when "
        "launched from this folder; a server: http://host:port)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME", help="every run of this experiment")
    which.add_argument("--parent", metavar="RUN_ID", help="the child runs of this sweep run")
    parser.add_argument(
        "--filter",
        dest="filter_string",
        metavar="STR",
        help="MLflow search filter, e.g. \"params.`optimizer.name` = 'sgd'\"; alone it "
        "searches every experiment, with --experiment/--parent it narrows them",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument(
        "--group-by",
        metavar="KEY",
        help="panels of the learning curves, and rows of the descriptive table that aggregate "
        "over everything but this param (e.g. schedule.name) or tag (schedule)",
    )
    parser.add_argument(
        "--metric",
        help=f"the tested number: {', '.join(OUTCOMES)}, or any metric the runs log with its "
        "direction (test/mse, test/excess); default: the runs' task's test metric (test/acc "
        "for classification, test/mse for regression)",
    )
    parser.add_argument(
        "--target", type=number(False), help="val/acc that steps_to_target counts the steps to"
    )
    parser.add_argument(
        "--baseline",
        metavar="LABEL",
        help="configuration to compare against (its label, or the unique label starting with "
        "LABEL-); default: the best mean",
    )
    parser.add_argument(
        "--equivalence",
        type=number(True),
        metavar="MARGIN",
        help="|Δ| below which arms are equivalent (TOST); default for accuracies: one "
        "validation example, 1/dataset.val_size",
    )
    parser.add_argument(
        "--test",
        choices=TESTS,
        default="auto",
        help="the test of Δ = 0 on paired seeds: t (paired t-test, assumes normal differences), "
        "rank (exact signed-rank: no assumption, but below 6 seeds it cannot reach p < 0.05) "
        "or auto: rank from 6 seeds on, t below (default: %(default)s)",
    )
    parser.add_argument(
        "--plan-seeds",
        type=number(True),
        metavar="DELTA",
        help="print the seeds each comparison needs to detect DELTA (80%% power, after Holm)",
    )
    parser.add_argument(
        "--no-log",
        action="store_true",
        help="with --parent: do not log the report to that run's artifacts (by default it goes "
        "into a folder named like the last part of --out)",
    )
    args = parser.parse_args(argv)
    if args.experiment is None and args.parent is None and not args.filter_string:
        parser.error("one of --experiment, --parent or --filter is required")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """``lrexp-compare``: problems with the store or the selection exit 2 with one line."""
    args = parse_args(argv)
    # A dead tracking server should fail in seconds, not after MLflow's default minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        out = compare(
            args.tracking_uri,
            experiment=args.experiment,
            parent=args.parent,
            filter_string=args.filter_string,
            out_dir=args.out,
            group_by=args.group_by,
            metric=args.metric,
            target=args.target,
            baseline=args.baseline,
            equivalence=args.equivalence,
            plan_seeds=args.plan_seeds,
            test=args.test,
            log_to_parent=not args.no_log,
            artifact_path=args.out.resolve().name or None,
        )
    except CompareError as err:
        print(f"lrexp-compare: error: {err}", file=sys.stderr)
        sys.exit(2)
    for line in verdict_lines(out / "summary.json"):
        print(line)
    if args.plan_seeds is not None:
        for line in plan_lines(out / "summary.json"):
            print(line)
    for name in (*REPORT_FILES, "forest.png"):
        print(out / name)


def plan_lines(path: Path) -> list[str]:
    """The ``--plan-seeds`` answer from ``summary.json``: one line per comparison."""
    import json

    data = json.loads(path.read_text())
    lines = [
        f"seeds to detect Δ = {data['plan_delta']} against {data['baseline']} with 80% power "
        f"after Holm ({data['family_size']} comparisons):"
    ]
    for c in data["configurations"]:
        if c["label"] != data["baseline"] and "seeds_needed" in c:
            needed = c["seeds_needed"]
            text = "unknown" if needed is None else needed
            lines.append(f"  {c['label']}: {int(text) if isinstance(text, float) else text}")
    return lines
