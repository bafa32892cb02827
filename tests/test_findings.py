"""The findings study (``scripts/lm_findings.py``) end to end at a tiny size: the LR grid, the
paired seeds at each arm's best LR, the test and the table; a second invocation runs nothing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from conftest import ROOT, TINY_GPT, experiment_id
from lrexp.data.text import stdlib_files
from lrexp.findings.claims import CLAIMS, arms_for, lr_ratio_outcome, outcome

TINY = [
    *TINY_GPT,
    "trainer.max_steps=30",
    "trainer.val_check_interval=15",
    "hydra/launcher=basic",
]


def test_outcomes_follow_the_claims_words() -> None:
    assert outcome("better", "better") == "reproduced"
    assert outcome("better", "equivalent") == "not reproduced"
    assert outcome("better_or_equal", "equivalent") == "reproduced"
    assert outcome("not_better", "worse") == "reproduced"
    assert outcome("worse", "inconclusive") == "inconclusive"
    assert lr_ratio_outcome(0.5) == "reproduced"
    assert lr_ratio_outcome(1.0) == lr_ratio_outcome(0.25) == "not reproduced"
    # a fork's trunk and a short cosine's LR source come with the findings that need them
    forks = ["lm_cooldown_50", "lm_cooldown_200", "lm_cooldown_400"]
    assert arms_for({"3"}) == ["lm_constant", *forks]
    assert set(arms_for(None)) >= {arm for c in CLAIMS for arm in c.arms}


def test_the_envelope_plots_each_lengths_mean_and_t_interval(tmp_path: Path) -> None:
    from scipy import stats

    from lrexp.findings.report import envelope
    from lrexp.findings.results import Results

    losses = {"lm_cooldown_at200": 2.3, "lm_cooldown_at400": 2.07, "lm_cooldown_200": 1.81,
              "lm_cosine_250": 2.32, "lm_cosine_500": 2.08, "lm_cosine": 1.84}  # fmt: skip
    best = {"lm_constant": 0.002, "lm_cosine": 0.004}
    results = Results(
        {
            arm: {
                (best["lm_constant" if "cooldown" in arm else "lm_cosine"], s): {
                    "val_full/loss": loss + 0.01 * s
                }
                for s in range(4)
            }
            for arm, loss in losses.items()
        }
    )
    plotted = envelope(results, best, tmp_path / "envelope.png")
    half = stats.t.ppf(0.975, 3) * stats.sem([0.0, 0.01, 0.02, 0.03])
    forks, cosines = plotted.values()
    assert [m for m, _ in forks] == pytest.approx([2.315, 2.085, 1.825])
    assert [m for m, _ in cosines] == pytest.approx([2.335, 2.095, 1.855])
    assert all(h == pytest.approx(half) for _, h in forks + cosines)
    assert (tmp_path / "envelope.png").stat().st_size > 10_000


def stored_runs(client: MlflowClient) -> list[Run]:
    return list(client.search_runs([experiment_id(client, "lm_findings")]))


@pytest.mark.slow
def test_a_finding_end_to_end_then_nothing_to_rerun(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index, source in enumerate(stdlib_files()[1][:120]):
        (corpus / f"{index:03d}.py").write_bytes(source.read_bytes())
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    out = tmp_path / "findings"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "lm_findings.py"),
        "--tracking-uri", uri, "--findings", "2", "--grid", "0.002,0.006", "--seeds", "2",
        "--out", str(out), *TINY, f"dataset.path={corpus}",
    ]  # fmt: skip
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    payload = json.loads((out / "findings.json").read_text())
    assert set(payload["best_lr"]) == {"lm_wsd_sqrt", "lm_wsd_linear"}
    (row,) = payload["rows"]
    assert (row["key"], row["seeds"]) == ("2", 2)
    # the row's Δ is the mean of the per-seed differences of the runs' final whole-split loss
    client = MlflowClient(uri)
    runs = [r for r in stored_runs(client) if r.data.tags.get("sweep") != "parent"]
    assert len(runs) == 2 * (2 + 1)  # per arm: the grid's 2 LRs at seed 0, seed 1 at the best
    final: dict[tuple[str, int], float] = {}
    for run in runs:
        arm, lr = run.data.tags["study_arm"], float(run.data.params["optimizer.lr"])
        if lr == payload["best_lr"][arm]:
            final[arm, int(run.data.params["seed"])] = run.data.metrics["val_full/loss"]
    differences = [final["lm_wsd_sqrt", s] - final["lm_wsd_linear", s] for s in range(2)]
    assert row["delta"] == pytest.approx(sum(differences) / 2, abs=1e-12)
    assert row["delta"] != 0 and math.isfinite(row["p_holm"])
    assert row["outcome"] == outcome("better", row["verdict"])
    table = (out / "findings.md").read_text()
    assert f"**{row['outcome']}**" in table and "Hägele et al. 2024" in table
    assert (out / "findings.png").stat().st_size > 0
    # everything is in the store: a second invocation launches nothing and says the same
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "at lr" not in again.stdout
    launched = first.stdout.count(" at lr ")  # the grid's multirun, then one per best LR
    assert launched in (2, 3)
    assert len(stored_runs(client)) == len(runs) + launched  # and the multiruns' parent runs
    assert (out / "findings.md").read_text() == table
