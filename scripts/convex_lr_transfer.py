"""Does the convex bound transfer a tuned LR to a longer horizon, as a real LR sweep finds it?

``python scripts/convex_lr_transfer.py --tracking-uri URI --parent ID`` reads an LR sweep of
one schedule on the convex testbed at two or more horizons, e.g.

    python train.py -m experiment=convex_study schedule=cosine trainer.max_epochs=10,40 \\
        optimizer.lr=0.05,0.0707,0.1,0.1414,0.2,0.2828 seed=0,1

For each horizon it takes the mean over seeds of the final ``train/excess`` (the weights the
run ends with) at each LR, and the best LR: the grid's best, refined by the vertex of a
parabola through it and its two neighbours in (log LR, log excess) (numpy's ``polyfit``). The
shortest horizon's best LR is then transferred to every longer one with the bound
(:func:`lrexp.predict.bound.transfer_lr`, on the planned LRs of each horizon) and compared with
that horizon's measured best LR, and with keeping the LR unchanged.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from lrexp.compare.store import open_client, select_runs
from lrexp.config.overrides import compose_configs
from lrexp.config.planning import planned_curve
from lrexp.predict.bound import transfer_lr

KEYS = ("schedule.name", "trainer.max_epochs", "dataset.batch_size", "dataset.samples")


def refined_best(lrs: list[float], excess: list[float]) -> float:
    """The grid's best LR, moved to the vertex of the parabola through it and its neighbours
    in log-log coordinates when it has a neighbour on each side and the parabola opens up."""
    best = int(np.argmin(excess))
    if best == 0 or best == len(lrs) - 1:
        return lrs[best]
    x = np.log(lrs[best - 1 : best + 2])
    y = np.log(excess[best - 1 : best + 2])
    a, b, _ = np.polyfit(x, y, 2)
    return float(np.exp(-b / (2 * a))) if a > 0 else lrs[best]


def interpolated(lrs: list[float], excess: list[float], lr: float) -> float:
    """The mean excess at ``lr``, linear in (log LR, log excess) between grid points."""
    return float(np.exp(np.interp(np.log(lr), np.log(lrs), np.log(excess))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--parent", required=True, help="the LR sweep's parent run")
    args = parser.parse_args()
    children, _ = select_runs(
        open_client(args.tracking_uri), experiment=None, parent=args.parent, filter_string=None
    )
    by_horizon: dict[int, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    settings: dict[int, list[str]] = {}
    for run in children:
        if run.info.status != "FINISHED":
            continue
        params = run.data.params
        epochs = int(params["trainer.max_epochs"])
        lr = float(params["optimizer.lr"])
        by_horizon[epochs][lr].append(run.data.metrics["train/excess"])  # the last validation
        settings[epochs] = [f"{k}={params[k]}" for k in KEYS]
    horizons = sorted(by_horizon)
    if len(horizons) < 2:
        raise SystemExit("the sweep needs at least two values of trainer.max_epochs")
    best: dict[int, float] = {}
    grids: dict[int, tuple[list[float], list[float]]] = {}
    multipliers = {}
    for epochs in horizons:
        lrs = sorted(by_horizon[epochs])
        means = [float(np.mean(by_horizon[epochs][lr])) for lr in lrs]
        grids[epochs] = (lrs, means)
        best[epochs] = refined_best(lrs, means)
        base = ["task=regression", "dataset=convex", "model=linear", *settings[epochs]]
        cfg = compose_configs([[*base, "optimizer.lr=1.0"]])[0]
        multipliers[epochs] = np.array(planned_curve(cfg))
        steps = len(multipliers[epochs])
        print(f"{epochs} epochs ({steps} steps), mean final train/excess over seeds:")
        for lr, mean in zip(lrs, means, strict=True):
            seeds = len(by_horizon[epochs][lr])
            print(f"  lr {lr:<8g} {mean:.3e}  ({seeds} seeds)")
        print(f"  best LR {best[epochs]:.4g} (grid best {lrs[int(np.argmin(means))]:g})")
    short = horizons[0]
    for epochs in horizons[1:]:
        moved = transfer_lr(best[short], multipliers[short], multipliers[epochs])
        lrs, means = grids[epochs]
        at_best, at_moved = interpolated(lrs, means, best[epochs]), interpolated(lrs, means, moved)
        kept = interpolated(lrs, means, best[short])
        print(
            f"{short} -> {epochs} epochs: the bound moves LR {best[short]:.4g} to {moved:.4g}; "
            f"the sweep's best is {best[epochs]:.4g} (ratio {moved / best[epochs]:.3f}). "
            f"Excess at the transferred LR {at_moved:.3e}, at the best {at_best:.3e}, "
            f"at the unchanged LR {kept:.3e}"
        )


if __name__ == "__main__":
    main()
