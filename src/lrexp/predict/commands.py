"""The config-facing half of ``lrexp-predict``: configurations from the preview's override
syntax (``schedule=cosine,wsd optimizer.lr=0.05``) planned step by step with
:func:`lrexp.config.planning.planned_curve`, then predicted (``predict``) or bounded
(``bound``); and the ``fit.json`` file that carries fitted laws from ``fit`` to ``predict``."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrexp.predict.bound import bound_curve, bound_terms
from lrexp.predict.fit import Fit
from lrexp.predict.laws import Array, make_law, predict_curve
from lrexp.predict.runs import RunCurves

CHECK_FILES = ("check.md", "check.json", "check.png", "check.html")
#: predicted curves are evaluated on at most this many steps (the last one always included)
CURVE_POINTS = 400


@dataclass
class Planned:
    """One configuration of the command line: its label, base LR and LR of every update."""

    label: str
    base_lr: float
    lrs: Array
    warmup: int = 0  #: warmup steps of its schedule
    warmup_settings: dict[str, object] | None = None  #: its ``schedule.warmup`` node


def planned(overrides: Sequence[str]) -> list[Planned]:
    """Every combination of ``overrides``, composed and planned as training will run it."""
    from lrexp.config.overrides import compose_configs, expand_overrides
    from lrexp.config.planning import base_lr, bind, planned_curve, schedule_settings
    from lrexp.schedules import Warmup

    combos = expand_overrides(overrides)
    labels = [", ".join(f"{k}={v}" for k, v in swept.items()) for swept, _ in combos]
    configs = compose_configs([lines for _, lines in combos], labels)
    out = []
    for label, cfg in zip(labels, configs, strict=True):
        lrs = np.array(planned_curve(cfg), dtype=np.float64)
        schedule = bind(cfg).schedule
        warmup = schedule.steps if isinstance(schedule, Warmup) else 0
        settings = schedule_settings(cfg).get("warmup")
        name = label or str(cfg.schedule.name)
        out.append(Planned(name, base_lr(cfg), lrs, warmup, settings))
    return out


def write_fits(fits: dict[str, Fit], runs: RunCurves, path: Path) -> Path:
    data = {
        name: {
            "params": fit.params,
            "interval": {k: list(v) for k, v in fit.interval().items()},
            "objective": fit.objective,
            "points": fit.points,
            "curves": fit.curves,
            "resamples": fit.resamples,
        }
        for name, fit in fits.items()
    }
    runs_used = [
        {
            "run_id": c.run_id,
            "label": c.label,
            "seed": c.seed,
            "loss_key": runs.loss_key[str(c.run_id)],
        }
        for c in runs.curves
    ]
    path.write_text(json.dumps({"laws": data, "runs": runs_used}, indent=2))
    return path


def read_fits(path: Path) -> dict[str, Fit]:
    try:
        data = json.loads(path.read_text())["laws"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"--fit {path}: not a fit.json of lrexp-predict fit ({err})") from None
    return {
        name: Fit(name, d["params"], d["objective"], d["points"], d["curves"], d["resamples"])
        for name, d in data.items()
    }


def fit_lines(fits: dict[str, Fit]) -> list[str]:
    """One line per law: each parameter with its 95 % interval over seed resamples, and a
    note for every parameter whose estimate falls outside its own interval."""
    lines = []
    for name, fit in fits.items():
        interval = fit.interval()
        cells, outside = [], []
        for k, v in fit.params.items():
            cell = f"{k}={v:.4g}"
            if interval:
                low, high = interval[k]
                cell += f" [{low:.4g}, {high:.4g}]"
                if not low <= v <= high:
                    outside.append(k)
            cells.append(cell)
        lines.append(f"{name} ({fit.points} points, {fit.curves} runs): " + ", ".join(cells))
        if outside:
            lines.append(
                f"  {', '.join(outside)} outside its interval: the fit on all seeds lands "
                "where almost no seed resample's fit does, so these runs pin it down poorly "
                "(more seeds or schedules would)"
            )
    return lines


def run_predict(args: argparse.Namespace) -> list[str]:
    from lrexp.plots import log_scale, new_figure

    fits = read_fits(args.fit)
    configs = planned(args.overrides)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    fig = new_figure(8.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    columns: dict[str, Array] = {}
    lines = []
    for config in configs:
        steps = np.unique(np.linspace(1, len(config.lrs), CURVE_POINTS).astype(np.int64))
        for name, fit in fits.items():
            law = make_law(name)
            curve = predict_curve(law, fit.theta, config.lrs, steps)
            key = f"{config.label} [{name}]"
            columns[key] = curve
            (line,) = ax.plot(steps, curve, label=key)
            finals = [
                predict_curve(law, np.array(r), config.lrs, steps[-1:])[0] for r in fit.resamples
            ]
            text = f"{key}: final loss {curve[-1]:.4g}"
            if finals:
                low, high = np.percentile(finals, [2.5, 97.5])
                text += f" [95% over seed resamples: {low:.4g}, {high:.4g}]"
                band = np.array(
                    [predict_curve(law, np.array(r), config.lrs, steps) for r in fit.resamples]
                )
                ax.fill_between(
                    steps,
                    *np.percentile(band, [2.5, 97.5], axis=0),
                    color=line.get_color(),
                    alpha=0.2,
                )
            lines.append(text)
        columns[f"{config.label} [steps]"] = steps.astype(np.float64)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("predicted training loss")
    log_scale(ax)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "predict.png", dpi=110)
    write_columns(columns, out / "predict.csv")
    return [*lines, f"wrote {out / 'predict.png'}", f"wrote {out / 'predict.csv'}"]


def write_columns(columns: dict[str, Array], path: Path) -> None:
    """One column per key (empty past a shorter column's end)."""
    length = max(len(v) for v in columns.values())
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        for i in range(length):
            writer.writerow([repr(float(v[i])) if i < len(v) else "" for v in columns.values()])


def run_bound(args: argparse.Namespace) -> list[str]:
    """The bound of each configuration at its own LR, its optimal base LR, and every LR
    transferred from the first configuration's (taken as tuned): lr₁ · γ*(this) / γ*(first)."""
    from lrexp.plots import log_scale, new_figure

    configs = planned(args.overrides)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    first = configs[0]
    first_terms = bound_terms(first.lrs / first.base_lr)
    fig = new_figure(8.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    lines = [f"LRs transferred from {first.label} (optimizer.lr={first.base_lr:g}, as tuned):"]
    rows = []
    columns: dict[str, Array] = {}
    for config in configs:
        multipliers = config.lrs / config.base_lr
        terms = bound_terms(multipliers)
        moved = first.base_lr * terms.optimal_lr / first_terms.optimal_lr
        steps, values = bound_curve(multipliers, moved)
        ax.plot(steps, values, label=f"{config.label} (lr {moved:.3g})")
        columns[f"{config.label} [steps]"] = steps.astype(np.float64)
        columns[f"{config.label} [bound]"] = values
        ratio = terms.optimal_lr / first_terms.optimal_lr
        rows.append([config.label, len(config.lrs), config.base_lr, ratio, moved, terms.at(moved)])
        lines.append(
            f"  {config.label}: {len(config.lrs)} steps, optimal base LR x{ratio:.4g} of the "
            f"first's -> optimizer.lr={moved:.4g} (bound {terms.at(moved):.4g} at D=G=1)"
        )
    with (out / "bound.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["config", "steps", "lr", "optimal_lr_ratio", "transferred_lr", "bound"])
        writer.writerows(rows)
    write_columns(columns, out / "bound_curves.csv")
    ax.set_xlabel("optimizer step (run stopped there)")
    ax.set_ylabel("convex last-iterate bound (D=G=1)")
    log_scale(ax)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "bound.png", dpi=110)
    return [*lines, *(f"wrote {out / n}" for n in ("bound.csv", "bound_curves.csv", "bound.png"))]


def run_optimize(args: argparse.Namespace) -> list[str]:
    """The schedule that minimizes a fitted law's final loss for one configuration (its
    optimizer.lr is the peak; its length and warmup are kept), as ``tabulated.yaml``."""
    from lrexp.plots import new_figure
    from lrexp.predict.synthesis import optimize_schedule

    fits = read_fits(args.fit)
    if args.law not in fits:
        raise ValueError(f"--law {args.law}: not in {args.fit} (has {', '.join(fits)})")
    configs = planned(args.overrides)
    if len(configs) != 1:
        raise ValueError("optimize takes one configuration (no comma lists)")
    (config,) = configs
    law, theta = make_law(args.law), fits[args.law].theta
    warmup_lrs = config.lrs[: config.warmup]
    found = optimize_schedule(
        law, theta, warmup_lrs, config.base_lr, len(config.lrs) - config.warmup, args.knots
    )
    given = float(predict_curve(law, theta, config.lrs, np.array([len(config.lrs)]))[0])
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, object] = {
        "name": "tabulated",
        "at": found.at,
        "values": found.values,
        "total": None,
    }
    if config.warmup_settings:
        table["warmup"] = config.warmup_settings
    lines = [f"{k}: {json.dumps(v)}" for k, v in table.items()]
    (out / "tabulated.yaml").write_text(
        f"# lrexp-predict optimize ({args.law}) for: {config.label}\n" + "\n".join(lines) + "\n"
    )
    fig = new_figure(8.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(config.lrs, label=f"{config.label}: predicted {given:.4g}")
    ax.plot(found.lrs, label=f"tabulated: predicted {found.predicted:.4g}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "optimized.png", dpi=110)
    at = ",".join(repr(a) for a in found.at)
    values = ",".join(repr(v) for v in found.values)
    return [
        f"{config.label}: predicted final loss {given:.5g} ({args.law})",
        f"optimized (non-increasing, {args.knots} knots): predicted final loss "
        f"{found.predicted:.5g}",
        f"run it with: schedule=tabulated 'schedule.at=[{at}]' 'schedule.values=[{values}]'",
        f"wrote {out / 'tabulated.yaml'}",
        f"wrote {out / 'optimized.png'}",
    ]
