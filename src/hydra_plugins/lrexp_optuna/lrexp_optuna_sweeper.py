"""Registers ``hydra/sweeper=lrexp_optuna`` and the plugin class Hydra instantiates.

Hydra imports every module under the ``hydra_plugins`` namespace package at startup and only
instantiates plugin classes defined there, so this module stays small: the implementation
(which imports Optuna lazily) is :mod:`lrexp.search`.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from lrexp import search


class LrexpOptunaSweeper(search.OptunaSweeper):
    """Optuna ask-and-tell sweeper over Hydra's launcher; see :mod:`lrexp.search`."""


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="lrexp_optuna",
    node=search.LrexpOptunaSweeperConf,
    provider="lrexp",
)
