"""A resume never rescales a schedule silently (issue 13 §1): a changed plan that changes any
LR is refused in one line; ``resume_mode=extend`` keeps the checkpoint's schedule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from lrexp.config.planning import planned_curve
from lrexp.config.resuming import plan_resume, record_plan
from lrexp.config.training import train_config
from lrexp.errors import ConfigError

CASES = [
    # (schedule overrides, first length, second length, refused)
    (["schedule=cosine"], "trainer.max_epochs=2", "trainer.max_epochs=4", True),
    (["schedule=cosine"], "trainer.max_steps=50", "trainer.max_steps=100", True),
    (["schedule=onecycle"], "trainer.max_epochs=2", "trainer.max_epochs=3", True),
    (["schedule=onecycle"], "trainer.max_steps=60", "trainer.max_steps=30", True),
    (["schedule=wsd"], "trainer.max_epochs=2", "trainer.max_epochs=4", True),
    (["schedule=wsd"], "trainer.max_steps=100", "trainer.max_steps=200", True),
    # a step schedule counted in epochs, a constant trunk and a metric-driven family: a new
    # length changes no LR that the schedule gives, so the resume goes on as asked
    (
        ["schedule=step", "schedule.step_size=1"],
        "trainer.max_epochs=2",
        "trainer.max_epochs=4",
        False,
    ),
    (
        ["schedule=step", "schedule.step_size=1"],
        "trainer.max_steps=50",
        "trainer.max_steps=90",
        False,
    ),
    (
        [
            "schedule=wsd",
            "schedule.decay_frac=0",
            "schedule.warmup.frac=null",
            "schedule.warmup.steps=10",
        ],
        "trainer.max_steps=100",
        "trainer.max_steps=300",
        False,
    ),
    (["schedule=plateau"], "trainer.max_epochs=2", "trainer.max_epochs=4", False),
    (["schedule=plateau"], "trainer.max_steps=50", "trainer.max_steps=90", False),
]


@pytest.mark.parametrize(
    ("schedule", "before", "after", "refused"),
    CASES,
    ids=[
        f"{c[0][0].split('=')[1]}-{c[1].split('.')[1]}-{'refused' if c[3] else 'accepted'}"
        for c in CASES
    ],
)
def test_a_new_length_is_refused_exactly_when_it_changes_an_lr(
    make_cfg: Callable[..., DictConfig],
    schedule: list[str],
    before: str,
    after: str,
    refused: bool,
) -> None:
    unbounded = ["trainer.max_epochs=-1"] if "max_steps" in before else []
    recorded = record_plan(make_cfg(*schedule, *unbounded, before))
    resumed_cfg = make_cfg(*schedule, *unbounded, after)
    if not refused:
        resumed = plan_resume(resumed_cfg, recorded)
        assert resumed.extended_from is None
        assert resumed.schedule == record_plan(resumed_cfg)  # the new length from now on
        return
    key = after.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key}: resuming with .*{key} ") as caught:
        plan_resume(resumed_cfg, recorded)
    message = str(caught.value)
    assert "\n" not in message
    assert (
        f"has {recorded.total} optimizer steps, this run {record_plan(resumed_cfg).total}"
        in message
    )
    assert "resume_mode=extend" in message
    extended = plan_resume(make_cfg(*schedule, *unbounded, after, "resume_mode=extend"), recorded)
    assert extended.extended_from == recorded.total and extended.schedule == recorded


def test_changes_that_touch_no_lr_are_accepted(make_cfg: Callable[..., DictConfig]) -> None:
    recorded = record_plan(make_cfg("trainer.max_epochs=2"))
    more_validation = make_cfg("trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2")
    assert plan_resume(more_validation, recorded).schedule == record_plan(more_validation)


def test_a_new_base_lr_is_named(make_cfg: Callable[..., DictConfig]) -> None:
    recorded = record_plan(make_cfg("trainer.max_epochs=2"))
    with pytest.raises(
        ConfigError, match=r"^optimizer\.lr: resuming with optimizer\.lr 0\.1 -> 0\.2"
    ):
        plan_resume(make_cfg("trainer.max_epochs=2", "optimizer.lr=0.2"), recorded)


def test_resume_auto_with_a_longer_cosine(
    make_cfg: Callable[..., DictConfig], tracking_uri: str, tmp_path: Path
) -> None:
    """The issue's commands: 2 epochs of cosine, then 4 with resume=auto: refused before the
    run is touched; with resume_mode=extend the run continues at the final LR, tagged."""
    common = ("schedule=cosine", f"logger.tracking_uri={tracking_uri}", "resume=auto")
    first = train_config(make_cfg(*common, "trainer.max_epochs=2"))
    with pytest.raises(
        ConfigError, match=r"^trainer\.max_epochs: resuming with trainer\.max_epochs 2 -> 4"
    ):
        train_config(make_cfg(*common, "trainer.max_epochs=4"))
    client = MlflowClient(tracking_uri)
    assert client.get_run(str(first.run_id)).info.status == "FINISHED"  # untouched

    extended = train_config(make_cfg(*common, "trainer.max_epochs=4", "resume_mode=extend"))
    assert extended.run_id == first.run_id and extended.global_step == 160
    run = client.get_run(str(first.run_id))
    assert run.data.tags["extended_from"] == "80" and run.info.status == "FINISHED"
    trace = sorted(client.get_metric_history(str(first.run_id), "lr"), key=lambda m: m.step)
    assert [m.step for m in trace] == list(range(160))
    old = planned_curve(make_cfg("schedule=cosine", "trainer.max_epochs=2"))
    assert [m.value for m in trace[:80]] == pytest.approx(old, rel=1e-12, abs=1e-15)
    assert {m.value for m in trace[80:]} == {0.0}  # the cosine's final value (min_factor 0), held
