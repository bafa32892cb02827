"""Does the convex bound rank schedules as the convex testbed measures them?

``python scripts/convex_bound_spearman.py --tracking-uri URI --parent ID`` reads a
``convex_study`` sweep (``python train.py -m experiment=convex_study``), takes each family's
mean ``train/excess`` over its seeds, computes the bound (:mod:`lrexp.predict.bound`) of the
same family's planned LRs, and prints Spearman's correlation between the two (scipy), once at
the runs' own base LR (D = G = 1) and once at each schedule's bound-optimal base LR.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from scipy.stats import spearmanr

from lrexp.compare.store import open_client, select_runs
from lrexp.config.overrides import compose_configs
from lrexp.config.planning import planned_curve
from lrexp.predict.bound import bound_terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--parent", required=True, help="the convex_study sweep's parent run")
    args = parser.parse_args()
    children, _ = select_runs(
        open_client(args.tracking_uri), experiment=None, parent=args.parent, filter_string=None
    )
    excess: dict[str, list[float]] = defaultdict(list)
    overrides: dict[str, list[str]] = {}
    for run in children:
        family = run.data.params["schedule.name"]
        excess[family].append(run.data.metrics["train/excess"])
        keys = ("optimizer.lr", "trainer.max_epochs", "dataset.batch_size", "dataset.samples")
        overrides[family] = [f"{k}={run.data.params[k]}" for k in keys]
    measured, at_lr, optimal = [], [], []
    print("family         seeds  mean train/excess  bound at the runs' LR  bound at its optimum")
    for family in sorted(excess):
        lr = float(overrides[family][0].split("=")[1])
        base = ["task=regression", "dataset=convex", "model=linear", f"schedule={family}"]
        cfg = compose_configs([[*base, *overrides[family]]])[0]
        terms = bound_terms(np.array(planned_curve(cfg)) / lr)
        measured.append(float(np.mean(excess[family])))
        at_lr.append(terms.at(lr))
        optimal.append(terms.optimal_bound)
        print(
            f"{family:14s} {len(excess[family]):5d}  {measured[-1]:17.5f}  {at_lr[-1]:21.4f}"
            f"  {optimal[-1]:20.4f}"
        )
    for name, values in (("the runs' LR", at_lr), ("each optimum", optimal)):
        result = spearmanr(values, measured)
        print(
            f"Spearman, bound at {name} vs measured: {result.statistic:.3f} (p {result.pvalue:.3g})"
        )


if __name__ == "__main__":
    main()
