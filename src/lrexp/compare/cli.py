"""The ``lrexp-compare`` command line: argument parsing and one-line errors (exit status 2)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lrexp.compare.common import CompareError
from lrexp.compare.core import compare


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lrexp-compare",
        description="Compare MLflow runs: LR traces, val curves and a per-configuration summary.",
    )
    parser.add_argument("--tracking-uri", required=True, help="e.g. sqlite:///mlruns/mlflow.db")
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
        help="aggregate over everything but this param (e.g. schedule.name) or tag (schedule)",
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
        )
    except CompareError as err:
        print(f"lrexp-compare: error: {err}", file=sys.stderr)
        sys.exit(2)
    for name in ("summary.md", "summary.csv", "comparison.png"):
        print(out / name)
