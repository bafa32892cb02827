"""``lrexp-plot-schedules`` / ``python -m lrexp.plot_schedules``: draw the planned LR curve
of a configuration without training.

    python -m lrexp.plot_schedules schedule=step,cosine,onecycle --out lr.png --csv lr.csv
    python -m lrexp.plot_schedules --gallery docs/schedules.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from lrexp.config.compose import one_line
from lrexp.errors import ConfigError
from lrexp.plot_schedules.curves import Curve, plan_gallery, plan_overrides
from lrexp.plot_schedules.figures import figure_for, gallery_figure, save


def write_csv(curves: Sequence[Curve], path: str | Path) -> Path:
    """``step`` then one LR column per curve (empty past a shorter curve's end)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *(c.label for c in curves)])
        for step in range(max(c.total for c in curves)):
            writer.writerow([step, *(repr(c.lrs[step]) if step < c.total else "" for c in curves)])
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrexp-plot-schedules",
        description="Draw the planned learning-rate curve of a configuration without training. "
        "Takes the same Hydra overrides as train.py; comma lists (schedule=step,cosine) "
        "overlay every combination.",
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra override")
    parser.add_argument("--out", type=Path, default=Path("schedule.png"), help="PNG to write")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="also write step,lr per curve")
    parser.add_argument("--log", action="store_true", help="logarithmic LR axis")
    parser.add_argument(
        "--gallery", type=Path, metavar="PATH", help="draw every schedule family into PATH"
    )
    parser.add_argument("-m", "--multirun", action="store_true", help=argparse.SUPPRESS)
    return parser


def _note(message: str) -> None:
    print(f"lrexp: note: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> Iterator[str]:
    """Do the work; yield the lines to print on stdout."""
    if args.gallery is not None:
        panels = plan_gallery(args.overrides)
        curves = [curve for curve, _ in panels]
        path = save(gallery_figure(panels, log=args.log), args.gallery)
        yield f"wrote {path}: {len(panels)} schedule families"
    else:
        plan = plan_overrides(args.overrides)
        curves = plan.curves
        for curve in curves:
            for note in curve.notes:
                _note(note if len(curves) == 1 else f"[{curve.label}] {note}")
        peaks = [max(c.lrs) for c in curves]
        if not args.log and min(peaks) > 0 and max(peaks) / min(peaks) > 30:
            _note("the curves' peak LRs differ by more than 30x; --log shows them all")
        path = save(figure_for(plan, log=args.log), args.out)
        longest = max(c.total for c in curves)
        yield f"wrote {path}: {len(curves)} curve(s) over {longest} optimizer steps"
    if args.csv is not None:
        yield f"wrote {write_csv(curves, args.csv)}"


def main(argv: Sequence[str] | None = None) -> int:
    """``lrexp-plot-schedules`` / ``python -m lrexp.plot_schedules``; returns the exit status."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = _parser().parse_intermixed_args(argv)
    try:
        for line in _run(args):
            print(line)
    except ConfigError as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        print(f"lrexp: error: {one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        return 1
    return 0
