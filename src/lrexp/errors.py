"""User-facing errors that are reported as one line, without a traceback."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DataUnavailableError(RuntimeError):
    """A dataset's files are missing and cannot be downloaded."""


class DivergedError(RuntimeError):
    """The training loss became non-finite; training stops before the update."""

    def __init__(self, step: int, lr: float, loss: float) -> None:
        super().__init__(f"diverged: loss is {loss} at step {step} (lr {lr:.6g})")
        self.step = step
        self.lr = lr
