"""User-facing errors that are reported as one line, without a traceback."""

import re
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def named_config_error(
    group: str, keys: Iterable[str], err: BaseException, fallback: str, prefix: str = ""
) -> ConfigError:
    """A library's complaint about one of ``group``'s settings as a :class:`ConfigError` that
    names the key its message mentions (``betas`` for torch's "Invalid beta parameter"), else
    ``fallback`` with ``prefix`` (what raised it) before the message."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    words = set(re.findall(r"[a-z_]+", message.lower()))
    for key in keys:
        if key != "name" and (key.lower() in words or key.lower().rstrip("s") in words):
            return ConfigError(f"{group}.{key}", message)
    return ConfigError(fallback, prefix + message)


class DataUnavailableError(RuntimeError):
    """A dataset's files are missing and cannot be downloaded."""


class DivergedError(RuntimeError):
    """The training loss became non-finite; training stops before the update."""

    def __init__(self, step: int, lr: float, loss: float) -> None:
        super().__init__(f"diverged: loss is {loss} at step {step} (lr {lr:.6g})")
        self.step = step
        self.lr = lr


class TrackingUnavailableError(RuntimeError):
    """The tracking server does not answer."""
