"""Registers ``hydra/sweeper=lrexp_optuna`` and the plugin class Hydra instantiates.

Hydra imports every module under the ``hydra_plugins`` namespace package at startup and only
instantiates plugin classes defined there, so this module stays small: the implementation
(which imports Optuna lazily) is :mod:`lrexp.search` (the sweeper: :mod:`lrexp.search.sweeper`).
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from lrexp.search.conf import LrexpOptunaSweeperConf
from lrexp.search.sweeper import OptunaSweeper


class LrexpOptunaSweeper(OptunaSweeper):
    """Optuna ask-and-tell sweeper over Hydra's launcher; see :mod:`lrexp.search`."""


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="lrexp_optuna",
    node=LrexpOptunaSweeperConf,
    provider="lrexp",
)
