"""Check command-line overrides before Hydra starts, so mistakes cost one clear line.

Hydra reports unknown options and keys as multi-line messages after creating output
directories; this check composes the config the same way first and reports the first problem
as ``lrexp: error: <key>: <what is allowed>``.
"""

from __future__ import annotations

import copy
import importlib.resources
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException, ValidationError

from lrexp.config.compose import type_error
from lrexp.config.forking import resolve_fork
from lrexp.config.validate import validate
from lrexp.errors import ConfigError

UNKNOWN_KEY = re.compile(r"Could not override '(?P<key>[^']+)'")


def _options(config_dirs: Sequence[Path], group: str) -> list[str]:
    return sorted(
        {
            p.stem
            for folder in config_dirs
            for p in (folder / group).glob("*.yaml")
            if not p.stem.startswith("_")
        }
    )


def search_dirs(config_dir: Path, overrides: Sequence[Override]) -> list[Path]:
    """lrexp's config folder and those ``hydra.searchpath`` adds (``pkg://`` a package's
    folder, ``file://`` a directory): the places a group's options come from."""
    folders = [config_dir]
    for override in overrides:
        if override.get_key_element() != "hydra.searchpath":
            continue
        entries = override.value()
        for entry in entries if isinstance(entries, list) else [entries]:
            text = str(entry)
            if text.startswith("pkg://"):
                package = text.removeprefix("pkg://").replace("/", ".")
                try:
                    folders.append(Path(str(importlib.resources.files(package))))
                except (ModuleNotFoundError, TypeError) as err:
                    raise ConfigError("hydra.searchpath", f"{text}: {err}") from None
            else:
                folders.append(Path(text.removeprefix("file://")))
    return folders


@dataclass(frozen=True)
class ComposedMode:
    """The ``hydra.mode`` the checked command line composes to (None: the config sets none)."""

    mode: RunMode | None


def check_overrides(config_dir: Path, args: Sequence[str]) -> ComposedMode | None:
    """Raise :class:`ConfigError` for the first override that cannot work.

    Sweeps (``a,b,c``) are checked option by option for config groups; the config is then
    composed and validated with the first value of every sweep. Returns the run mode the
    composed config sets when it is certain to be the one Hydra will see (no sweeps and no
    ``hydra.mode`` override), else None.
    """
    # key=value overrides, and deletions (~key), which need no value
    user_args = [a for a in args if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    try:
        parsed = OverridesParser.create().parse_overrides(user_args)
    except HydraException as err:
        raise ConfigError("overrides", str(err).splitlines()[0]) from None
    first_values: list[str] = []
    fork_sweeps: dict[str, list[Any]] = {}
    key_sweeps: dict[str, list[Any]] = {}
    certain = not any(o.is_sweep_override() or o.get_key_element() == "hydra.mode" for o in parsed)
    folders = search_dirs(config_dir, parsed)
    for raw, override in zip(user_args, parsed, strict=True):
        if override.get_key_element() == "hydra.searchpath":
            first_values.append(raw)  # the composition must see the added config folders
            continue
        if override.is_hydra_override():
            continue
        if not override.is_sweep_override():
            values, first = [override.get_value_element_as_str()], raw
        elif override.is_discrete_sweep():
            values = list(override.sweep_string_iterator())
            first = f"{override.get_key_element()}={values[0]}"
            if override.get_key_element().startswith("fork."):
                fork_sweeps[override.get_key_element()] = list(override.sweep_iterator())
        else:
            continue  # a range or interval for a search sweeper; checked per job
        group = override.get_key_element().lstrip("+~")
        if any((folder / group).is_dir() for folder in folders):
            choices = _options(folders, group)
            for value in values:
                if value not in choices:
                    raise ConfigError(
                        group, f"no option {value!r}; choose one of {', '.join(choices)}"
                    )
        elif override.is_sweep_override() and group == override.get_key_element():
            key_sweeps[group] = list(override.sweep_iterator())
        first_values.append(first)
    cfg = _compose(config_dir, first_values)
    check_swept_types(cfg, key_sweeps)
    mode = cfg.hydra.mode
    with open_dict(cfg):
        del cfg["hydra"]  # Hydra's own node: its runtime values exist only in a run
    validate(cfg)
    check_every_fork(cfg, fork_sweeps)
    return ComposedMode(mode) if certain else None


def check_swept_types(cfg: DictConfig, sweeps: dict[str, list[Any]]) -> None:
    """Every value of a swept key has the type its structured config gives it (the first
    value was composed already): ``seed=0,abc`` fails here, not in the sweep's second job."""
    for key, values in sweeps.items():
        job = copy.deepcopy(cfg)
        for value in values[1:]:
            try:
                OmegaConf.update(job, key, value, merge=True)
            except ValidationError as err:
                raise type_error(err) or ConfigError(key, str(err).splitlines()[0]) from None


def check_every_fork(cfg: DictConfig, sweeps: dict[str, list[Any]]) -> None:
    """Resolve the fork of every job of a ``fork.*`` sweep (the first is already checked), so
    a step the trunk did not keep fails before the sweep's parent run exists."""
    if not sweeps:
        return
    keys = list(sweeps)
    for values in itertools.islice(itertools.product(*sweeps.values()), 1, None):
        job = copy.deepcopy(cfg)
        for key, value in zip(keys, values, strict=True):
            OmegaConf.update(job, key, value)
        resolve_fork(job)


def _compose(config_dir: Path, overrides: list[str]) -> DictConfig:
    """The config as Hydra will compose it; an unknown key is named with its siblings."""
    # paths come from Hydra's runtime, which does not exist yet; they are not validated
    placeholders = ["paths.root_dir=.", "paths.output_dir=."]
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose("config", overrides=placeholders + overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        typed = type_error(err)
        if typed is not None:
            raise typed from None
        message = str(err).splitlines()[0]
        unknown = UNKNOWN_KEY.match(message)
        if unknown is None:
            raise ConfigError("overrides", message) from None
        key = unknown["key"]
    raise ConfigError(key, f"no such key; {_siblings(config_dir, placeholders, overrides, key)}")


def _siblings(config_dir: Path, placeholders: list[str], overrides: list[str], key: str) -> str:
    """What the parent of the unknown ``key`` holds, composed without that override."""
    others = [o for o in overrides if o.split("=", 1)[0] != key]
    parent_key = key.rpartition(".")[0]
    hint = "prefix with + to add a new key"
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            base = compose("config", overrides=placeholders + others)
    except (HydraException, OmegaConfBaseException):
        return hint  # another override is broken too; it is reported once this one is fixed
    parent = OmegaConf.select(base, parent_key) if parent_key else base
    if not isinstance(parent, DictConfig):
        return f"{parent_key} is a value, not a mapping"
    known = ", ".join(sorted(str(k) for k in parent))
    return f"{parent_key or 'the config'} has {known} ({hint})"
