"""Command-line overrides as configs: Hydra's sweep grammar expanded into one override list
per combination, and each list composed (the previews and ``lrexp-predict`` use them)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from omegaconf import DictConfig

from lrexp.config.compose import config_dir, one_line, type_error
from lrexp.errors import ConfigError


def expand_overrides(overrides: Sequence[str]) -> list[tuple[dict[str, str], list[str]]]:
    """Every combination of the sweeps in ``overrides``: ``(swept key -> value, overrides)``.

    ``a,b,c``, ``choice(a,b)`` and ``range(0,3)`` values sweep (Hydra's multirun grammar, parsed
    by Hydra's own override parser); ``[1,2]`` stays one list value.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise ConfigError("overrides", one_line(err)) from None
    options: list[list[tuple[str, str, str]]] = []
    for raw, override in zip(overrides, parsed, strict=True):
        if not override.is_sweep_override():
            options.append([("", "", raw)])
            continue
        if not override.is_discrete_sweep():
            raise ConfigError(raw, "only lists of values can be overlaid (a,b,c / choice / range)")
        key = override.get_key_element()
        try:
            values = list(override.sweep_string_iterator())
        except Exception as err:  # glob() needs Hydra's config loader
            raise ConfigError(raw, f"cannot expand this sweep ({err})") from None
        options.append([(key.lstrip("+~"), value, f"{key}={value}") for value in values])
    combos = []
    for choice in itertools.product(*options):
        swept = {key: value for key, value, _ in choice if key}
        combos.append((swept, [line for _, _, line in choice]))
    return combos


def compose_configs(
    overrides_list: Sequence[Sequence[str]], contexts: Sequence[str] | None = None
) -> list[DictConfig]:
    """Compose ``conf/config.yaml`` (:func:`lrexp.config.compose.config_dir`) once per list.

    Hydra's composition errors become a one-line :class:`ConfigError` on ``overrides``, naming
    the combination (``contexts``) that failed.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    configs = []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for i, overrides in enumerate(overrides_list):
            try:
                configs.append(compose("config", overrides=list(overrides)))
            except (HydraException, OmegaConfBaseException) as err:
                where = f" (with {contexts[i]})" if contexts and contexts[i] else ""
                raise type_error(err, where) or ConfigError(
                    "overrides", one_line(err) + where
                ) from None
    return configs
