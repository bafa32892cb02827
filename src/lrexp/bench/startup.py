"""Startup of ``python train.py`` as a ratio measured in one run.

ratio = (process start -> first optimizer step of ``python train.py``) divided by (process
start -> end of a bare ``python -c "import pytorch_lightning"``). The two are run in turn,
``repeats`` times each, and their medians divided, so a slow spell of a shared CPU hits both.
"existing store" runs train into an MLflow store that a first, untimed run created; "new
store" runs each get a store that does not exist yet. Process start is read from
``/proc/self/stat`` (Linux), so interpreter start-up counts in both.

The parts: importing the packages a run has loaded by its first step (the rest of the time is
composing and validating the config, data, model and Trainer), and, on its own, opening the
MLflow store and creating a run in it, timed in a process that has already imported MLflow.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lrexp.config.compose import config_dir

#: Python that prints the seconds since this process started, as ``<label> <seconds>``.
ELAPSED = """
import os
def since_start():
    with open('/proc/self/stat') as f:
        start_ticks = int(f.read().split(')')[1].split()[19])
    with open('/proc/uptime') as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf('SC_CLK_TCK')
"""
IMPORT_PROBE = ELAPSED + "import pytorch_lightning\nprint(f'READY {since_start():.3f}')\n"
#: imports the top-level packages named in argv (those a run had loaded at its first step)
MODULES_PROBE = (
    ELAPSED
    + """
import importlib, sys
for name in sys.argv[1].split(","):
    try:
        importlib.import_module(name)
    except Exception:
        pass
print(f"READY {since_start():.3f}")
"""
)
FIRST_STEP_PROBE = (
    ELAPSED
    + """
import runpy, sys
from torch.optim.optimizer import register_optimizer_step_pre_hook
def first_step(optimizer, args, kwargs):
    ready = since_start()
    loaded = sorted({name.split(".")[0] for name in sys.modules if not name.startswith("_")})
    print(f"LOADED {','.join(loaded)}", flush=True)
    print(f"READY {ready:.3f}", flush=True)
    os._exit(0)
register_optimizer_step_pre_hook(first_step)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""
)
STORE_PROBE = """
import sys, time
from lrexp.tracking.store import TrackedRun
start = time.perf_counter()
TrackedRun(sys.argv[1], "startup", "store-open", {})
print(f"READY {time.perf_counter() - start:.3f}")
"""


def probe(code: str, args: list[str], cwd: Path, checkout: Path | None = None) -> float:
    """Run ``python -c code args`` and return the seconds it printed after ``READY``."""
    return float(probe_lines(code, args, cwd, checkout)["READY"])


def probe_lines(
    code: str, args: list[str], cwd: Path, checkout: Path | None = None
) -> dict[str, str]:
    """Run ``python -c code args`` (with ``checkout``'s ``src`` first on the path when given);
    its ``LABEL value`` lines on stdout, by label."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")} if checkout else None
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    if "READY" in lines:
        return lines
    raise RuntimeError(f"the startup probe did not finish:\n{result.stderr[-2000:]}")


def train_args(root: Path, store: Path, checkout: Path | None = None) -> list[str]:
    """``train.py`` of ``checkout`` (default: this one) with its outputs and store under
    ``root`` (a quiet default run)."""
    return [
        str((checkout or config_dir().parent) / "train.py"),
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={root / 'outputs'}",
        f"logger.tracking_uri=sqlite:///{store}",
    ]


@dataclass(frozen=True)
class Startup:
    """Medians in seconds, and the ratios the README and ``make bench`` report."""

    import_lightning: float  #: bare ``import pytorch_lightning``
    first_step: float  #: to the first optimizer step, existing store
    first_step_new_store: float  #: to the first optimizer step, new store
    modules: float  #: importing every module a run needs before its first step
    store_open: float  #: opening an existing store and creating a run (MLflow imported)
    checkout: Path | None = None  #: the checkout whose train.py was timed (None: this one)

    @property
    def ratio(self) -> float:
        return self.first_step / self.import_lightning

    @property
    def ratio_new_store(self) -> float:
        return self.first_step_new_store / self.import_lightning


def measure_startup(root: Path, repeats: int = 5, checkout: Path | None = None) -> Startup:
    """Time ``repeats`` of each probe, interleaved (see the module docstring); ``checkout``
    times another checkout's ``train.py`` and code (e.g. the commit before a change)."""
    root.mkdir(parents=True, exist_ok=True)
    store = root / "existing" / "mlflow.db"
    # creates the store (untimed) and tells which packages a run has loaded at its first step
    loaded = probe_lines(FIRST_STEP_PROBE, train_args(root, store, checkout), root, checkout)
    samples: dict[str, list[float]] = {
        key: [] for key in Startup.__dataclass_fields__ if key != "checkout"
    }
    for i in range(repeats):
        samples["import_lightning"].append(probe(IMPORT_PROBE, [], root))
        samples["first_step"].append(
            probe(FIRST_STEP_PROBE, train_args(root, store, checkout), root, checkout)
        )
        new_store = root / f"new-{i}" / "mlflow.db"
        samples["first_step_new_store"].append(
            probe(FIRST_STEP_PROBE, train_args(root, new_store, checkout), root, checkout)
        )
        samples["modules"].append(probe(MODULES_PROBE, [loaded["LOADED"]], root, checkout))
        samples["store_open"].append(probe(STORE_PROBE, [f"sqlite:///{store}"], root))
    medians = {key: statistics.median(values) for key, values in samples.items()}
    return Startup(**medians, checkout=checkout)


def startup_lines(startup: Startup, repeats: int) -> list[str]:
    """The report ``make bench`` prints."""
    where = f" of {startup.checkout}" if startup.checkout else ""
    return [
        f"startup{where}, medians of {repeats} (process start -> first optimizer step of "
        "python train.py, divided by a bare `import pytorch_lightning`):",
        f"  existing store: {startup.first_step:.2f} s / {startup.import_lightning:.2f} s = "
        f"{startup.ratio:.2f}",
        f"  new store:      {startup.first_step_new_store:.2f} s / "
        f"{startup.import_lightning:.2f} s = {startup.ratio_new_store:.2f}",
        f"  parts of the existing-store run: importing what it has loaded by its first step "
        f"{startup.modules:.2f} s, the rest (configs, validation, data, model, Trainer) "
        f"{startup.first_step - startup.modules:.2f} s",
        f"  opening the existing store and creating a run (MLflow already imported) "
        f"{startup.store_open:.2f} s",
    ]
