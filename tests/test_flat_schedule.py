"""A schedule that never changes the LR over the run says so in one line when the run starts
(``schedule=step`` with its 5-epoch ``step_size`` in a 2-epoch run trained at a constant LR
without a word)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from lrexp.config.planning import bind
from lrexp.config.training import train_config
from lrexp.plan import flat_schedule_warning

FLAT = (
    "schedule=step keeps the LR at 0.1 for all 80 optimizer steps of this run: its first change "
    "lies beyond the run's end (compare its step_size, milestones or boundaries with the run's "
    "length)"
)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["schedule=step", "trainer.max_epochs=2"], FLAT),
        (["schedule=step", "trainer.max_epochs=6"], None),  # decays at epoch 5
        (
            ["schedule=multistep", "schedule.milestones=[30]", "trainer.max_epochs=3"],
            "schedule=multistep keeps the LR at 0.1 for all 120 optimizer steps of this run",
        ),
        (["schedule=constant", "trainer.max_epochs=2"], None),  # flat by design
        (["schedule=plateau", "trainer.max_epochs=2"], None),  # moves with the metric
        (["schedule=cosine", "trainer.max_epochs=1"], None),
    ],
)
def test_flat_schedules_are_named(
    make_cfg: Callable[..., DictConfig], overrides: list[str], expected: str | None
) -> None:
    cfg = make_cfg(*overrides)
    warning = flat_schedule_warning(bind(cfg), str(cfg.schedule.name))
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and warning.startswith(expected)


def test_the_run_prints_the_warning_before_training(
    make_cfg: Callable[..., DictConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    train_config(make_cfg("schedule=step", "trainer.max_epochs=2", "logger=none"))
    assert f"lrexp: warning: {FLAT}" in capsys.readouterr().err.splitlines()
    train_config(make_cfg("schedule=step", "trainer.max_epochs=6", "logger=none"))
    assert "lrexp: warning:" not in capsys.readouterr().err
