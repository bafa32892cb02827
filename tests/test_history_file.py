"""The history file's format and the checks ``lrexp-compare`` makes before trusting one (the
server-side path is tested against a real server in test_server_compare.py)."""

from __future__ import annotations

import math
from pathlib import Path

from lrexp.compare.bulk_http import trusted
from lrexp.tracking.history_file import kept_keys, read_history_file, write_history_file


def test_a_history_file_reads_back_in_step_order_with_nan_and_repeats(tmp_path: Path) -> None:
    stored = {
        "lr": [(0, 10, 0.1), (2, 12, 0.05), (1, 11, 0.075)],
        "lr/head": [(0, 10, 1.0)],
        "val/loss": [(5, 20, math.nan), (5, 19, 0.7), (10, 30, 0.5)],
        "val/acc": [],
    }
    path = write_history_file(stored, "tok123", tmp_path / "h.npz")
    token, history = read_history_file(path.read_bytes())
    assert token == "tok123"
    assert history["lr"] == [(0, 0.1), (1, 0.075), (2, 0.05)]
    assert history["lr/head"] == [(0, 1.0)]
    assert history["val/acc"] == []
    (step, first), (_, second), last = history["val/loss"]
    assert (step, first) == (5, 0.7) and math.isnan(second)  # the later-logged point comes last
    assert last == (10, 0.5)
    points = [point for key in history for point in history[key]]
    assert all(type(step) is int and type(value) is float for step, value in points)


def test_kept_keys_are_the_lr_and_curve_keys() -> None:
    keys = ["lr", "lr/head", "val/acc", "test/acc", "train/loss", "epoch", "system/cpu", "lrx"]
    assert kept_keys(keys) == ["lr", "lr/head", "test/acc", "train/loss", "val/acc"]


def test_a_file_is_trusted_only_with_its_token_and_the_latest_values() -> None:
    history = {"lr": [(0, 0.1), (1, 0.05)], "val/loss": [(1, math.nan)]}
    latest = {"lr": 0.05, "val/loss": math.nan, "test/acc": 0.9}
    keys = ["lr", "val/loss"]
    assert trusted("t", history, ("t", latest), keys) == history
    assert trusted("t", history, ("other", latest), keys) is None
    assert trusted("t", history, ("t", {**latest, "lr": 0.5}), keys) is None  # more was logged
    assert trusted("t", {"lr": history["lr"]}, ("t", latest), keys) is None  # a key is missing
    assert trusted("t", history, ("t", {"lr": 0.05}), keys) == {"lr": history["lr"]}
