"""``lrexp-sync <output dir>``: send what a run kept in ``<output dir>/unsent/`` to its store.

A run whose tracking server went away for longer than ``logger.retry_seconds`` keeps its
unsent points (and, when it ended meanwhile, its final status, tags and artifacts) in a spill
file (:mod:`lrexp.tracking.spill`). This command sends them to the same run, in order, marking
each record as sent once the store holds it, so running it again sends nothing twice.
Credentials come from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lrexp.errors import TrackingUnavailableError
from lrexp.tracking.spill import SpillFile
from lrexp.tracking.uri import redact


def fail(message: str, code: int) -> None:
    print(f"lrexp-sync: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lrexp-sync", description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path, help="the run's output directory")
    parser.add_argument(
        "--tracking-uri", help="send to this server instead of the one the run used"
    )
    args = parser.parse_args(argv)
    spill = SpillFile(args.output_dir)
    if not spill.exists():
        fail(f"nothing to send: {spill.path} does not exist", 2)
    try:
        header = spill.header()
    except (ValueError, KeyError) as err:
        fail(str(err), 2)
    uri = args.tracking_uri or header.tracking_uri
    if "***" in uri:
        fail(f"{uri} hides its password: give the URI with --tracking-uri", 2)
    if not spill.pending():
        print(f"lrexp-sync: nothing to send: every record of run {header.run_id} is stored")
        return
    from lrexp.tracking.outbox import deliver
    from lrexp.tracking.store import TrackedRun

    try:
        run = TrackedRun(uri, header.experiment_name, "", {}, run_id=header.run_id)
        points, status = deliver(spill, run, args.output_dir)
    except TrackingUnavailableError as err:
        fail(f"{err}; nothing was lost, run lrexp-sync again later", 1)
    except Exception as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
        fail(f"sending to {redact(uri)} failed ({reason}); run lrexp-sync again later", 1)
    ended = f", run ended {status}" if status else ""
    print(f"lrexp-sync: sent {points} points to run {header.run_id} at {redact(uri)}{ended}")


if __name__ == "__main__":
    main()
