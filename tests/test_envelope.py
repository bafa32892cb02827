"""lrexp-compare on cooldown forks: the envelope table and figure and the compute table, from
synthetic runs written into a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from lrexp.compare import compare

T0 = 1_700_000_000_000


def log(
    client: MlflowClient,
    experiment: str,
    parent: str,
    name: str,
    params: dict[str, str],
    tags: dict[str, str],
    steps: int,
    vals: dict[int, tuple[float, float]],
) -> str:
    """A FINISHED child of ``parent`` with ``steps`` lr points and val (acc, loss) points."""
    run_id = client.create_run(
        experiment, start_time=T0, run_name=name, tags={"mlflow.parentRunId": parent, **tags}
    ).info.run_id
    first = int(tags.get("fork_at", 0))
    points = [Metric("lr", 0.1, T0 + s, s) for s in range(first, steps)]
    for step, (acc, loss) in vals.items():
        points += [
            Metric("val/acc", acc, T0 + step, step),
            Metric("val/loss", loss, T0 + step, step),
        ]
    client.log_batch(run_id, metrics=points, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(run_id, "FINISHED", end_time=T0 + 1000)
    return run_id


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Per seed 0, 1: a 140-step trunk validated every 35 steps; linear and sqrt forks at 70
    (10 steps) and 140 (20 steps); cosine references of 80 and 160 steps."""
    root = tmp_path_factory.mktemp("envelope")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("study")
    parent = client.create_run(experiment, tags={"sweep": "parent"}).info.run_id
    for seed in (0, 1):
        base = {"seed": str(seed), "dataset.shuffle_seed": str(seed)}
        trunk_vals = {s: (0.80 + s / 1000 + seed / 100, 0.5 - s / 1000) for s in (35, 70, 105, 140)}
        trunk = log(
            client, experiment, parent, f"trunk-s{seed}",
            {**base, "schedule.name": "constant"}, {}, 140, trunk_vals,
        )  # fmt: skip
        for shape, bonus in (("linear", 0.01), ("sqrt", 0.02)):
            for at, length in ((70, 10), (140, 20)):
                acc = 0.9 + bonus + at / 10000 + seed / 100
                log(
                    client, experiment, parent, f"fork-{shape}-{at}-s{seed}",
                    {**base, "schedule.name": "cooldown", "fork.shape": shape, "fork.at": str(at)},
                    {"fork_of": trunk, "fork_at": str(at), "fork_length": str(length),
                     "fork_shape": shape},
                    at + length, {at + length: (acc, 1 - acc)},
                )  # fmt: skip
        for total in (80, 160):
            acc = 0.9 + total / 10000 + seed / 100
            log(
                client, experiment, parent, f"cosine-{total}-s{seed}",
                {**base, "schedule.name": "cosine", "trainer.max_steps": str(total)}, {},
                total, {total // 2: (0.5, 2.0), total: (acc, 1 - acc)},
            )  # fmt: skip
    return uri, parent


def test_the_envelope_table_holds_each_curves_final_values(
    study: tuple[str, str], tmp_path: Path
) -> None:
    uri, parent = study
    out = compare(uri, parent=parent, out_dir=tmp_path)
    assert (out / "envelope.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "envelope.md").read_text().splitlines()
    acc_table = lines[lines.index("Final val/acc (mean ± sd over seeds, n):") + 2 :]
    assert acc_table[0] == "| steps | `cosine` | `linear cooldown` | `sqrt cooldown` |"
    rows = {line.split(" | ")[0].strip("| "): line for line in acc_table[2:6]}
    # seeds 0 and 1 differ by 0.01: mean +0.005, sd 0.0071
    assert rows["80"] == (
        "| 80 | 0.9130 ± 0.0071 (2) | 0.9220 ± 0.0071 (2) | 0.9320 ± 0.0071 (2) |"
    )
    assert rows["160"] == (
        "| 160 | 0.9210 ± 0.0071 (2) | 0.9290 ± 0.0071 (2) | 0.9390 ± 0.0071 (2) |"
    )
    compute = "\n".join(lines)
    assert "| trunks, once each | 2 | 280 |" in compute
    assert "| cooldown forks | 8 | 120 |" in compute  # 2 seeds x 2 shapes x (10 + 20)
    assert "| **spent: trunks + forks** | | **400** |" in compute
    assert "| separate runs of the forks' lengths | 8 | 960 |" in compute  # 4 x (80 + 160)
    assert "| separate / spent | | 2.40x |" in compute


def test_no_forks_no_envelope(study: tuple[str, str], tmp_path: Path) -> None:
    uri, _ = study
    out = compare(uri, filter_string="params.`schedule.name` = 'cosine'", out_dir=tmp_path)
    assert (out / "summary.md").is_file()
    assert not (out / "envelope.md").exists() and not (out / "envelope.png").exists()
