"""Launching the study's runs: multiruns of ``lrexp-train`` with ``experiment=lm_findings``
(two jobs at a time), from the current folder, into ``--tracking-uri`` and ``--experiment``."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def train_command() -> str:
    """``lrexp-train`` of this environment."""
    beside = Path(sys.executable).with_name("lrexp-train")
    return str(beside) if beside.exists() else shutil.which("lrexp-train") or "lrexp-train"


def launch(
    arms: Sequence[str],
    lrs: Sequence[float],
    seeds: Sequence[int],
    args: argparse.Namespace,
    extra: Sequence[str] = (),
) -> None:
    """One multirun of ``arms`` x ``lrs`` x ``seeds`` (``extra``: more overrides); stops the
    study if it fails."""
    command = [
        train_command(),
        "-m",
        "experiment=lm_findings",
        f"study_arm={','.join(arms)}",
        f"optimizer.lr={','.join(map(str, lrs))}",
        f"seed={','.join(map(str, seeds))}",
        f"logger.tracking_uri={args.tracking_uri}",
        f"logger.experiment_name={args.experiment}",
        *extra,
        *args.overrides,
    ]
    print(
        f"lm_findings: {', '.join(arms)} at lr {', '.join(map(str, lrs))}, seeds {list(seeds)}",
        flush=True,
    )
    started = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"lm_findings: {', '.join(arms)} failed:\n{tail}")
    print(f"lm_findings:   {time.monotonic() - started:.0f} s", flush=True)


def launch_grouped(
    wanted: dict[str, tuple[list[float], list[int]]], args: argparse.Namespace
) -> None:
    """Launch each arm's missing (LRs, seeds), one multirun for the arms that miss the same."""
    groups: dict[tuple[tuple[float, ...], tuple[int, ...]], list[str]] = {}
    for arm, (missing_lrs, missing_seeds) in wanted.items():
        if missing_lrs and missing_seeds:
            groups.setdefault((tuple(missing_lrs), tuple(missing_seeds)), []).append(arm)
    for (lrs, seeds), arms in groups.items():
        launch(arms, lrs, seeds, args)
