"""User-facing errors that are reported as one line, without a traceback."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DataUnavailableError(RuntimeError):
    """A dataset's files are missing and cannot be downloaded."""
