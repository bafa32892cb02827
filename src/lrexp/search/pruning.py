"""Pruning settings (``hydra.sweeper.pruner``): Optuna's own pruner, and the guards that keep
it from favouring schedules that decay early.

Pruning compares trials at equal steps. With LR schedules that favours whatever has already
decayed: at 30 % of a run a step or WSD schedule that decays early looks better than a
cosine that has not decayed yet, though the cosine may win at the end. So:

* no trial is pruned before its warmup ends and before ``min_fraction`` of its optimizer
  steps (the job asks ``should_prune`` only from there; :mod:`lrexp.search.reporting`);
* a space that varies *when* the LR decays (the family, a duration, a fraction of the run,
  a warmup, the run's length) is refused before any trial runs, unless
  ``allow_shape_search=true``. A space of the LR and a level (a floor such as cosine's
  ``min_factor``, a multiplier) is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lrexp.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    from optuna.pruners import BasePruner

KEY = "hydra.sweeper.pruner"
#: trial user attr: the step at which its job was pruned (written by the job)
PRUNED_STEP = "pruned_step"
#: Optuna pruner per name, and the options of each that ``hydra.sweeper.pruner`` passes on
PRUNERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "median": ("MedianPruner", ("n_startup_trials", "n_warmup_steps", "interval_steps")),
    "successive_halving": (
        "SuccessiveHalvingPruner",
        ("min_resource", "reduction_factor", "min_early_stopping_rate"),
    ),
    "hyperband": ("HyperbandPruner", ("min_resource", "max_resource", "reduction_factor")),
}
#: every option of any pruner (a node key set for another pruner than ``name`` is an error)
OPTIONS = tuple(sorted({key for _, keys in PRUNERS.values() for key in keys}))
#: schedule keys that move when the LR changes, besides every family's durations
TIMING_KEYS = ("name", "decay_frac", "frac", "pct_start", "shape", "decay_shape", "unit")
#: key prefixes that change the shape: the family, its warmup, a cooldown's trunk, the length
SHAPE_PREFIXES = ("schedule.warmup", "schedule.trunk", "trainer.max_steps", "trainer.max_epochs")


@dataclass
class PrunerConf:
    """``hydra.sweeper.pruner``: null options keep Optuna's defaults."""

    #: median | successive_halving | hyperband; null: no pruning
    name: str | None = None
    #: no trial is pruned before this fraction of its optimizer steps (nor in its warmup)
    min_fraction: float = 0.5
    #: accept a space that varies the schedule's shape (pruning is then biased; see docs)
    allow_shape_search: bool = False
    n_startup_trials: int | None = None
    n_warmup_steps: int | None = None
    interval_steps: int | None = None
    min_resource: Any = None
    max_resource: Any = None
    reduction_factor: int | None = None
    min_early_stopping_rate: int | None = None


@dataclass(frozen=True)
class PrunerSettings:
    """A checked pruner node: Optuna's class name and options, and lrexp's guards."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    min_fraction: float = 0.5
    allow_shape_search: bool = False

    def make(self) -> BasePruner:
        import optuna

        cls = getattr(optuna.pruners, PRUNERS[self.name][0])
        pruner: BasePruner = cls(**self.options)
        return pruner


def read_settings(node: Mapping[str, Any] | None) -> PrunerSettings | None:
    """``hydra.sweeper.pruner`` checked (None: no pruning); a bad value is a ConfigError."""
    if not node or node.get("name") is None:
        return None
    name = str(node["name"])
    if name not in PRUNERS:
        raise ConfigError(f"{KEY}.name", f"must be one of {', '.join(PRUNERS)}, got {name!r}")
    fraction = node.get("min_fraction", 0.5)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ConfigError(f"{KEY}.min_fraction", f"must be a number, got {fraction!r}")
    if not 0 <= fraction < 1:
        raise ConfigError(f"{KEY}.min_fraction", f"must be in [0, 1), got {fraction!r}")
    allowed = PRUNERS[name][1]
    options = {k: v for k, v in node.items() if k in OPTIONS and v is not None}
    for key in options:
        if key not in allowed:
            raise ConfigError(f"{KEY}.{key}", f"not an option of {name} ({', '.join(allowed)})")
    settings = PrunerSettings(name, options, float(fraction), bool(node.get("allow_shape_search")))
    try:
        settings.make()
    except (TypeError, ValueError) as err:
        raise ConfigError(KEY, f"{name}: {err}") from None
    return settings


def shape_keys(keys: Iterable[str]) -> list[str]:
    """The searched keys that change when the LR decays (see the module docstring)."""
    from lrexp.schedules import REGISTRY

    durations = {key for cls in REGISTRY.values() for key in getattr(cls, "durations", ())}
    timing = {f"schedule.{key}" for key in (*durations, *TIMING_KEYS)} | {"schedule"}
    found = []
    for key in keys:
        bare = key.lstrip("+~")
        if bare in timing or any(bare == p or bare.startswith(p + ".") for p in SHAPE_PREFIXES):
            found.append(bare)
    return found


def check_space(settings: PrunerSettings, keys: Iterable[str]) -> None:
    """Refuse pruning of a space that varies the schedule's shape, unless overridden."""
    varied = shape_keys(keys)
    if not varied or settings.allow_shape_search:
        return
    raise ConfigError(
        KEY,
        f"the search varies the schedule's shape ({', '.join(varied)}); pruning compares "
        "trials at equal steps, which favours schedules that decay early over those that "
        f"decay late but may end better; search without a pruner, or pass "
        f"{KEY}.allow_shape_search=true to accept the bias",
    )


def guard_step(total: int, warmup: int, min_fraction: float) -> int:
    """The first optimizer step at which a trial of ``total`` steps may be pruned."""
    import math

    return max(warmup, math.ceil(min_fraction * total))


def pruned_step(study: optuna.Study, trial: optuna.Trial) -> int | None:
    """The step at which the trial's job was pruned (read from the database: the job wrote
    it from its own process), or None."""
    storage = getattr(study._storage, "_backend", study._storage)
    step = storage.get_trial(trial._trial_id).user_attrs.get(PRUNED_STEP)
    return None if step is None else int(step)
