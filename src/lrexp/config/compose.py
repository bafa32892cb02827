"""Where lrexp's Hydra configs live, configs flattened to dotted keys, and Hydra's messages
flattened to one line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf.errors import ValidationError

from lrexp.config.schemas import register
from lrexp.errors import ConfigError


def config_dir() -> Path:
    """``$LREXP_CONFIG_DIR``, else the ``conf/`` folder of this checkout, else ``./conf``.

    It also registers lrexp's structured configs (:mod:`lrexp.config.schemas`), which ``conf/``'s
    defaults lists name, so whatever composes the folder it returns finds them.
    """
    register()
    if "LREXP_CONFIG_DIR" in os.environ:
        return Path(os.environ["LREXP_CONFIG_DIR"]).resolve()
    bundled = Path(__file__).resolve().parents[3] / "conf"
    return bundled if bundled.is_dir() else Path.cwd() / "conf"


def one_line(err: BaseException) -> str:
    """A Hydra/OmegaConf message on one line (option lists joined, search path dropped)."""
    text = str(err).split("Config search path:")[0]
    parts: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("See https://"):
            continue
        if line[:1].isspace() and parts:
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + stripped
        else:
            parts.append(stripped)
    text = ""
    for part in parts:
        text += ("" if not text else " " if text.endswith((".", ":")) else "; ") + part
    return text or type(err).__name__


def type_error(err: BaseException, context: str = "") -> ConfigError | None:
    """The structured configs' type check (:mod:`lrexp.config.schemas`) found in ``err`` or its
    causes (Hydra wraps it), as one line naming the key, ``context`` appended; None if ``err``
    is something else."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ValidationError) and cause.full_key:
            return ConfigError(str(cause.full_key), str(cause).splitlines()[0] + context)
        cause = cause.__cause__
    return None


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings to dotted keys with string values (lists kept whole)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
