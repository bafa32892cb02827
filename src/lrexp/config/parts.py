"""The parts of a run as the composed config names them: labels, plain nodes, and what the
planner needs of the data.

Building a part from its plain ``_target_`` node is :mod:`lrexp.parts` (a building block, so
the run and the benchmarks build parts without the config); this module labels the parts
(``name``: run names and tags), turns config nodes into plain Python (:func:`plain`), and
describes a config's data module for the planner once per process (:func:`data_info`).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from lrexp.data.describe import DataInfo, describe
from lrexp.errors import ConfigError
from lrexp.parts import LABEL, build_datamodule

#: lrexp's own data module: whole-dataset tensors, planned without loading
TENSOR_DATA = "lrexp.data.TensorDataModule"


def label(node: Mapping[str, Any], group: str) -> str:
    """``node``'s ``name``, else its ``_target_``'s last component in lower case."""
    name = node.get(LABEL)
    if isinstance(name, str) and name:
        return name
    target = node.get("_target_")
    if isinstance(target, str) and target:
        return target.rsplit(".", 1)[-1].lower()
    raise ConfigError(f"{group}._target_", "missing: name the class to build (a dotted path)")


#: the groups whose parts carry a label (run names, tags)
LABELLED = ("dataset", "model", "optimizer", "schedule")


def with_labels(cfg: DictConfig) -> DictConfig:
    """``cfg`` with a ``name`` in every labelled group that has none (a user's part named only
    by ``_target_``), so run names and tags read the same key for every part."""
    missing = [group for group in LABELLED if not cfg[group].get(LABEL)]
    if not missing:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for group in missing:
            cfg[group][LABEL] = label(cfg[group], group)
    return cfg


def plain(node: Mapping[str, Any]) -> dict[str, Any]:
    """A config node (a ``DictConfig`` or a mapping) as plain, resolved Python. Outside a
    Hydra run (a preview, a test) a key whose interpolation needs the run (``data_dir:
    ${paths.data_dir}``) keeps its unresolved text."""
    if not isinstance(node, DictConfig):
        return dict(node)
    try:
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException:
        raw: dict[str, Any] = OmegaConf.to_container(node, resolve=False)  # type: ignore[assignment]
        resolved = {}
        for key in raw:
            try:
                value = node[key]
                resolved[key] = (
                    OmegaConf.to_container(value, resolve=True)
                    if isinstance(value, DictConfig | ListConfig)
                    else value
                )
            except OmegaConfBaseException:
                resolved[key] = raw[key]
        return resolved


@functools.lru_cache(maxsize=16)
def _described(node_json: str, world_size: int) -> DataInfo:
    return describe(build_datamodule(json.loads(node_json)), world_size)


def data_info(node: Mapping[str, Any], world_size: int = 1) -> DataInfo:
    """What the planner and the model builder need of ``node``'s data module. A module that
    plans itself costs nothing; another is set up once per process for each config."""
    try:
        key = json.dumps(plain(node), sort_keys=True, default=str)
    except TypeError:
        return describe(build_datamodule(plain(node)), world_size)
    return _described(key, world_size)
