"""``lrexp-sync <dir>``: send what runs kept in ``<output dir>/unsent/`` to their store.

A run whose tracking server went away for longer than ``logger.retry_seconds`` keeps its
unsent points (and, when it ended meanwhile, its final status, tags and artifacts) in a spill
file (:mod:`lrexp.tracking.spill`). This command sends them to the same run, in order, marking
each record as sent once the store holds it, so running it again sends nothing twice. ``<dir>``
is a run's output directory, or any folder above runs (a multirun's sweep directory): every
run under it with a spill file is sent, one line each. Credentials come from
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lrexp.errors import TrackingUnavailableError
from lrexp.tracking.spill import RECORDS, SPILL_DIR, SpillFile
from lrexp.tracking.uri import redact


def run_dirs(folder: Path) -> list[Path]:
    """``folder`` when it is a run's output directory with a spill file, else every such
    directory under it."""
    if SpillFile(folder).exists():
        return [folder]
    return sorted(path.parent.parent for path in folder.glob(f"**/{SPILL_DIR}/{RECORDS}"))


def sync_run(output_dir: Path, tracking_uri: str | None) -> int:
    """Send one run's spill file; print one line; the exit status it deserves (0, 1 for a
    server still away or failing, 2 for a file or URI that cannot be used)."""
    spill = SpillFile(output_dir)
    try:
        header = spill.header()
    except (ValueError, KeyError) as err:
        return failed(str(err), 2)
    uri = tracking_uri or header.tracking_uri
    if "***" in uri:
        return failed(f"{uri} hides its password: give the URI with --tracking-uri", 2)
    if not spill.pending():
        print(f"lrexp-sync: nothing to send: every record of run {header.run_id} is stored")
        return 0
    from lrexp.tracking.outbox import deliver
    from lrexp.tracking.store import TrackedRun

    try:
        run = TrackedRun(uri, header.experiment_name, "", {}, run_id=header.run_id)
        points, status = deliver(spill, run, output_dir)
    except TrackingUnavailableError as err:
        return failed(f"{err}; nothing was lost, run lrexp-sync again later", 1)
    except Exception as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
        return failed(f"sending to {redact(uri)} failed ({reason}); run lrexp-sync again later", 1)
    ended = f", run ended {status}" if status else ""
    print(f"lrexp-sync: sent {points} points to run {header.run_id} at {redact(uri)}{ended}")
    return 0


def failed(message: str, code: int) -> int:
    print(f"lrexp-sync: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lrexp-sync", description=__doc__.splitlines()[0])
    parser.add_argument(
        "output_dir", type=Path, help="a run's output directory, or a folder of runs (a sweep)"
    )
    parser.add_argument(
        "--tracking-uri", help="send to this server instead of the one the runs used"
    )
    args = parser.parse_args(argv)
    found = run_dirs(args.output_dir)
    if not found:
        missing = f"no {SPILL_DIR}/{RECORDS} in or under {args.output_dir}"
        sys.exit(failed(f"nothing to send: {missing}", 2))
    sys.exit(max(sync_run(folder, args.tracking_uri) for folder in found))


if __name__ == "__main__":
    main()
