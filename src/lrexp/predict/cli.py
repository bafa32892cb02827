"""``lrexp-predict``: fit loss-curve laws on runs, predict configurations before running
them, check the laws on held-out schedules, and the convex bound.

    lrexp-predict fit --tracking-uri URI --parent RUN_ID --out fit/
    lrexp-predict predict --fit fit/fit.json schedule=cosine,wsd,linear --out pred/
    lrexp-predict check --tracking-uri URI --parent RUN_ID --baseline cosine --out check/
    lrexp-predict bound schedule=cosine,wsd trainer.max_epochs=10,40 --out bound/
    lrexp-predict optimize --fit fit/fit.json schedule=cosine --out opt/

This is the one layer that composes configs (with the preview's override syntax); the
building blocks below it take arrays.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lrexp.compare.common import CompareError
from lrexp.errors import ConfigError
from lrexp.predict import commands
from lrexp.predict.check import attach_verdicts, leave_one_out, trust_warnings
from lrexp.predict.fit import Fit, fit_law, resample_seeds
from lrexp.predict.laws import LAWS, make_law
from lrexp.predict.report import curves_figure, summary_lines, write_html, write_json
from lrexp.predict.runs import (
    LOSS_KEYS,
    RunCurves,
    from_step,
    read_runs,
    train_loss_verdicts,
)
from lrexp.tracking.uri import DEFAULT_TRACKING_URI

#: the fewest seed resamples a 95 % percentile interval is drawn from: one in each 2.5 % tail
MIN_RESAMPLES = 40


def resample_count(text: str) -> int:
    """An argparse type: 0 (no intervals) or at least :data:`MIN_RESAMPLES`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value != 0 and value < MIN_RESAMPLES:
        raise argparse.ArgumentTypeError(
            f"must be 0 (no intervals) or at least {MIN_RESAMPLES}, got {value}: a 95% interval "
            f"from fewer resamples has almost nothing in its 2.5% tails"
        )
    return value


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        default=DEFAULT_TRACKING_URI,
        help=f"the MLflow store (default: {DEFAULT_TRACKING_URI})",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME")
    which.add_argument("--parent", metavar="RUN_ID", help="the child runs of this sweep run")
    parser.add_argument("--filter", dest="filter_string", metavar="STR", help="MLflow filter")
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="these runs instead")
    parser.add_argument(
        "--group-by", default="schedule.name", help="param or tag naming a schedule"
    )
    parser.add_argument(
        "--loss",
        metavar="KEY",
        help="the logged loss to fit, e.g. val/loss (default: train/loss_window, else train/loss)",
    )
    parser.add_argument(
        "--from-step",
        type=int,
        default=0,
        metavar="N",
        help="fit only the points logged at step N or later (default: all)",
    )
    parser.add_argument("--laws", nargs="+", default=list(LAWS), choices=list(LAWS))
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrexp-predict",
        description=__doc__.split("\n\n")[0].replace("``", "").replace("\n", " "),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit each law to runs; parameter intervals over seeds")
    _selection(fit)
    fit.add_argument(
        "--resamples",
        type=resample_count,
        default=50,
        help=f"seed resamples for 95%% intervals: 0 (none) or at least {MIN_RESAMPLES}",
    )
    check = sub.add_parser("check", help="leave one schedule out: predicted vs measured")
    _selection(check)
    check.add_argument(
        "--baseline",
        help="the schedule gaps are measured to (default: cosine when the runs have it, else "
        "the first schedule in name order)",
    )
    check.add_argument(
        "--resamples",
        type=resample_count,
        default=0,
        help=f"seed resamples per fold: 0 (none) or at least {MIN_RESAMPLES}",
    )
    predict = sub.add_parser("predict", help="predicted curves of configurations (overrides)")
    predict.add_argument("--fit", type=Path, required=True, help="fit.json of `fit`")
    predict.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    predict.add_argument("--out", type=Path, required=True, metavar="DIR")
    optimize = sub.add_parser("optimize", help="the schedule minimizing a law's final loss")
    optimize.add_argument("--fit", type=Path, required=True, help="fit.json of `fit`")
    optimize.add_argument("--law", default="mpl", choices=list(LAWS))
    optimize.add_argument("--knots", type=int, default=20, help="table positions after 0")
    optimize.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    optimize.add_argument("--out", type=Path, required=True, metavar="DIR")
    bound = sub.add_parser("bound", help="convex bound, optimal base LR, LR transfer")
    bound.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    bound.add_argument("--out", type=Path, required=True, metavar="DIR")
    return parser


def _loss_name(args: argparse.Namespace) -> str:
    """What the laws fit, for reports: ``--loss`` or the training loss."""
    return str(args.loss or "training loss")


def _read(args: argparse.Namespace) -> RunCurves:
    if not (args.experiment or args.parent or args.filter_string or args.run_ids):
        raise CompareError("one of --experiment, --parent, --filter or run ids is required")
    runs = read_runs(
        args.tracking_uri,
        experiment=args.experiment,
        parent=args.parent,
        filter_string=args.filter_string,
        run_ids=args.run_ids,
        group_by=args.group_by,
        loss=args.loss,
    )
    if args.loss and args.loss not in LOSS_KEYS:
        runs.val_loss = {}  # the fitted loss is not a training loss: no overfitting check
    for line in runs.skipped:
        print(f"lrexp-predict: left out {line}", file=sys.stderr)
    if runs.curves and args.from_step:
        runs.curves = from_step(runs.curves, args.from_step)
        if not runs.curves:
            raise CompareError(
                f"no selected run has 2 points of {args.loss or 'the training loss'} at step "
                f"{args.from_step} or later (--from-step)"
            )
    if not runs.curves:
        raise CompareError(f"no selected run has an lr trace and {args.loss or 'a training loss'}")
    return runs


def run_fit(args: argparse.Namespace) -> list[str]:
    runs = _read(args)
    rng = np.random.default_rng(0)
    fits: dict[str, Fit] = {}
    for name in args.laws:
        law = make_law(name)
        fits[name] = resample_seeds(
            law, runs.curves, fit_law(law, runs.curves), args.resamples, rng
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = commands.write_fits(fits, runs, args.out / "fit.json")
    lines = commands.fit_lines(fits)
    lines += [f"- {w}" for w in trust_warnings(runs.curves, runs.val_loss, _loss_name(args))]
    return [*lines, f"wrote {path}"]


def default_baseline(labels: Sequence[str]) -> str:
    """The schedule a check measures gaps to when ``--baseline`` is not given: ``cosine``
    (the field's reference) when the runs have it, else the first label in name order."""
    return "cosine" if "cosine" in labels else sorted(labels)[0]


def run_check(args: argparse.Namespace) -> list[str]:
    runs = _read(args)
    if args.baseline is None:
        labels = sorted({c.label for c in runs.curves})
        args.baseline = default_baseline(labels)
        print(
            f"lrexp-predict: baseline {args.baseline} (of {', '.join(labels)}; --baseline picks "
            "another)",
            file=sys.stderr,
        )
    loss = _loss_name(args)
    warnings = trust_warnings(runs.curves, runs.val_loss, loss)
    verdicts = train_loss_verdicts(runs, args.baseline)
    results = []
    for name in args.laws:
        try:
            result = leave_one_out(
                make_law(name), runs.curves, args.baseline, args.resamples, np.random.default_rng(0)
            )
        except ValueError as err:
            raise CompareError(str(err)) from None
        attach_verdicts(result, verdicts)
        warnings += [f"{name}: {w}" for w in result.warnings]
        results.append(result)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    lines = summary_lines(results, "lrexp-predict check", warnings, loss)
    (out / "check.md").write_text("\n".join(lines) + "\n")
    write_json(results, warnings, out / "check.json")
    curves_figure(results, runs.curves, out / "check.png", loss)
    write_html(lines, "check.png", out, out / "check.html")
    return [*lines, "", *(f"wrote {out / n}" for n in commands.CHECK_FILES)]


def main(argv: Sequence[str] | None = None) -> int:
    """``lrexp-predict``; returns the exit status (2: a bad store, selection or config)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lrexp.config.compose import one_line

    args = _parser().parse_args(argv)
    handlers = {
        "fit": run_fit,
        "check": run_check,
        "predict": commands.run_predict,
        "bound": commands.run_bound,
        "optimize": commands.run_optimize,
    }
    try:
        for line in handlers[args.command](args):
            print(line)
    except (CompareError, ConfigError, ValueError) as err:
        print(f"lrexp-predict: error: {err}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        print(f"lrexp-predict: error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
