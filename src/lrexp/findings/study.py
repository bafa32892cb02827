"""``python scripts/lm_findings.py``: run what the findings need that the store does not hold
yet, then test and tabulate them (:mod:`lrexp.findings.report`).

1. The LR grid: every full-length arm at every ``--grid`` LR, seed 0.
2. Each arm at its best LR (the lowest final ``val_full/loss`` of the grid), seeds 1 to
   ``--seeds`` - 1 (seed 0 is the grid's run); the cooldown forks and the envelope's short
   cosine runs at the LR of the arm they derive from.
3. The laws (:mod:`lrexp.findings.laws`): the cosine, constant and WSD arms and every other
   LR schedule at the constant's best LR (where the forks are), seeds 0 to ``--law-seeds`` - 1;
   the laws fitted and checked on them; ``lrexp-predict optimize``'s schedule run for
   ``--verify-seeds`` seeds against the better of cosine and WSD
   (:mod:`lrexp.findings.verify`).
4. The paired comparisons, the tables and the figures in ``--out``.

Every stage skips runs already FINISHED in the store (by ``study_arm`` tag, LR and seed), so an
interrupted study continues where it stopped. Runs are multiruns of ``lrexp-train`` with
``experiment=lm_findings`` (two jobs at a time), from the current folder.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from lrexp.findings.claims import CLAIMS, DERIVED_ARMS, GRID_ARMS, arms_for
from lrexp.findings.launching import launch_grouped
from lrexp.findings.law_study import laws_stage
from lrexp.findings.report import report
from lrexp.findings.results import read_results

DEFAULT_GRID = (0.001, 0.002, 0.004, 0.008, 0.016)
FINDING_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "laws")


def run_missing(args: argparse.Namespace, arms: list[str]) -> dict[str, float]:
    """Launch every missing run of ``arms``: the grid, then each arm's seeds at its best LR
    (the trunks before their forks); the best LR of each grid arm."""
    grid_arms = [a for a in arms if a in GRID_ARMS]
    results = read_results(args.tracking_uri, args.experiment)
    grid = {a: ([lr for lr in args.grid if not results.has(a, lr, 0)], [0]) for a in grid_arms}
    launch_grouped(grid, args)
    results = read_results(args.tracking_uri, args.experiment)
    best = {arm: results.best_lr(arm, args.grid) for arm in grid_arms}
    for stage in (grid_arms, [a for a in arms if a in DERIVED_ARMS]):
        wanted = {}
        for arm in stage:
            lr = best[DERIVED_ARMS.get(arm, arm)]
            wanted[arm] = ([lr], [s for s in range(args.seeds) if not results.has(arm, lr, s)])
        launch_grouped(wanted, args)
    return best


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    parser.add_argument("--experiment", default="lm_findings", help="the runs' MLflow experiment")
    parser.add_argument(
        "--grid",
        type=lambda text: tuple(float(v) for v in text.split(",")),
        default=DEFAULT_GRID,
        help="the LRs each full-length arm is tried at (comma-separated)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="paired seeds per arm, 0 to N-1")
    parser.add_argument(
        "--findings",
        type=lambda text: set(text.split(",")),
        default=None,
        help=f"the findings to run and test, of {','.join(FINDING_KEYS)} (default: all)",
    )
    parser.add_argument(
        "--law-seeds", type=int, default=5, help="seeds of each schedule the laws fit and check"
    )
    parser.add_argument(
        "--verify-seeds",
        type=int,
        default=10,
        help="paired seeds of the synthesized schedule and its rival",
    )
    parser.add_argument("--margin", type=float, default=0.01, help="nats: |Δ| below is equivalent")
    parser.add_argument("--out", type=Path, default=Path("findings"), help="table and figures")
    parser.add_argument("--report-only", action="store_true", help="run nothing; test the store")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run")
    args = parser.parse_args(argv)
    if args.findings is not None and not args.findings <= set(FINDING_KEYS):
        parser.error(f"--findings: choose from {','.join(FINDING_KEYS)}")
    for name in ("seeds", "law_seeds", "verify_seeds"):
        if getattr(args, name) < 2:
            parser.error(f"--{name.replace('_', '-')}: at least 2 paired seeds")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    arms = arms_for(args.findings)
    started = time.monotonic()
    if args.report_only:
        results = read_results(args.tracking_uri, args.experiment)
        best = {a: results.best_lr(a, args.grid) for a in arms if a in GRID_ARMS}
    else:
        best = run_missing(args, arms)
    claims = [c for c in CLAIMS if args.findings is None or c.key.rstrip("abc") in args.findings]
    if claims or args.findings is None or "4" in args.findings:
        results = read_results(args.tracking_uri, args.experiment)
        print("\n".join(report(results, claims, best, args)))
    if args.findings is None or "laws" in args.findings:
        print("\n".join(laws_stage(args, best, run=not args.report_only)))
    print(f"lm_findings: {time.monotonic() - started:.0f} s in all")
