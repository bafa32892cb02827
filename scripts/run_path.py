"""The path of one training run through lrexp's layers, traced while it runs.

Builds the run's spec from ``conf/`` (plus the overrides given), then traces every call from
one lrexp module into another while :func:`lrexp.run.train.train` runs, and prints each layer
boundary crossed. A *climb* is a call from a lower layer into a higher one (the run calling
into the config layer, a building block calling into the run): the layering says there
should be none. Each distinct caller -> callee pair is counted once.

    python scripts/run_path.py trainer.max_steps=20
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from hydra import compose, initialize_config_dir

from lrexp.config.compose import config_dir
from lrexp.config.training import train_spec
from lrexp.run.train import train

#: Layers from the top: entry points, the config layer, the run, the building blocks.
LAYERS = (
    ("entry", ("lrexp.cli", "lrexp.lr_find", "lrexp.search", "lrexp.bench")),
    ("config", ("lrexp.config",)),
    ("run", ("lrexp.run",)),
)


def layer(module: str) -> int:
    """0 for entry points ... 3 for a building block."""
    for depth, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return depth
    return len(LAYERS)


def main() -> None:
    edges: Counter[tuple[str, str]] = Counter()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_back is None:
            return
        callee = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "")
        if callee.startswith("lrexp.") and caller.startswith("lrexp.") and callee != caller:
            edges[
                (f"{caller}.{frame.f_back.f_code.co_name}", f"{callee}.{frame.f_code.co_name}")
            ] += 1

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"paths.root_dir={Path.cwd()}",
            f"paths.output_dir={tmp}/out",
            f"logger.tracking_uri=sqlite:///{tmp}/mlflow.db",
            "trainer.enable_progress_bar=false",
            *sys.argv[1:],
        ]
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            spec = train_spec(compose("config", overrides=overrides))
        sys.setprofile(profile)
        try:
            train(spec)
        finally:
            sys.setprofile(None)
    names = ["entry", "config", "run", "building block"]
    climbs = []
    for (caller, callee), calls in sorted(edges.items()):
        up, down = layer(caller.rsplit(".", 1)[0]), layer(callee.rsplit(".", 1)[0])
        if down < up:
            climbs.append(f"  {caller} ({names[up]}) -> {callee} ({names[down]}): {calls} calls")
    rooms = Counter(callee.rsplit(".", 1)[0] for _, callee in edges)
    print(f"{len(edges)} distinct calls between lrexp modules during train(spec)")
    print(f"climbs back up: {len(climbs)}")
    print("\n".join(climbs))
    print("modules entered by the most distinct calls:")
    for module, count in rooms.most_common(5):
        print(f"  {module}: {count}")


if __name__ == "__main__":
    main()
