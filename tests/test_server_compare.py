"""``lrexp-compare`` against a real PostgreSQL-backed ``mlflow server``: histories read in bulk
over HTTP and straight from PostgreSQL equal the client's, answers cut at the server's
limit are asked again, and every path writes the same ``summary.csv``."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lrexp.compare import bulk_http, compare
from lrexp.compare.histories import client_histories, http_histories, postgres_histories
from lrexp.localserver import MlflowServer

LR_STEPS = 3000
VAL_EVERY = 100
KEYS = ["lr", "val/acc", "val/loss"]


@pytest.fixture(scope="module")
def filled(pg_server: MlflowServer) -> Iterator[list[str]]:
    """Six finished runs (3 schedules x 2 seeds) logged through the server; their ids."""
    client = MlflowClient(pg_server.url)
    experiment_id = client.create_experiment("bulk-compare")
    now = int(time.time() * 1000)
    run_ids = []
    for index, schedule in enumerate(("cosine", "step", "linear") * 2):
        seed = index // 3
        run = client.create_run(experiment_id, run_name=f"{schedule}-s{seed}", start_time=now)
        run_id = run.info.run_id
        params = [Param("schedule.name", schedule), Param("seed", str(seed))]
        client.log_batch(run_id, params=params, tags=[RunTag("schedule", schedule)])
        decay = 1 + index % 3
        metrics = [
            Metric("lr", 0.1 * math.exp(-decay * t / LR_STEPS), now, t) for t in range(LR_STEPS)
        ]
        for t in range(VAL_EVERY, LR_STEPS + 1, VAL_EVERY):
            accuracy = 0.9 + 0.09 * t / LR_STEPS - 0.001 * decay + 0.0001 * seed
            loss = math.nan if (index, t) == (4, VAL_EVERY) else 1 - accuracy
            metrics += [Metric("val/acc", accuracy, now, t), Metric("val/loss", loss, now, t)]
        metrics.append(Metric("test/acc", 0.95, now, LR_STEPS))
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        client.set_terminated(run_id, "FINISHED", end_time=now + LR_STEPS)
        run_ids.append(run_id)
    yield run_ids


def same(
    a: dict[str, dict[str, list[tuple[int, float]]]],
    b: dict[str, dict[str, list[tuple[int, float]]]],
) -> bool:
    """Equal histories, NaN equal to NaN."""

    def norm(h: dict[str, dict[str, list[tuple[int, float]]]]) -> object:
        return {
            r: {k: [(s, "nan" if math.isnan(v) else v) for s, v in p] for k, p in h[r].items()}
            for r in h
        }

    return norm(a) == norm(b)


@pytest.mark.parametrize("limit", [25_000, 1000, 100])
def test_bulk_http_and_postgres_equal_the_client(
    pg_server: MlflowServer, filled: list[str], limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a lower limit is sent as max_results, so the server itself cuts its answers there:
    # 1000 pages through each run's lr (3000 points), 100 also re-asks the grouped val keys
    monkeypatch.setattr(bulk_http, "MAX_POINTS", limit)
    expected = client_histories(MlflowClient(pg_server.url), filled, KEYS)
    assert [s for s, _ in expected[filled[0]]["lr"]] == list(range(LR_STEPS))
    assert len(expected[filled[0]]["val/acc"]) == LR_STEPS // VAL_EVERY
    assert math.isnan(expected[filled[4]]["val/loss"][0][1])
    assert same(http_histories(pg_server.url, filled, KEYS), expected)
    assert same(postgres_histories(pg_server.backend_uri, filled, KEYS), expected)


def test_compare_over_http_and_postgres_write_the_same_summary(
    pg_server: MlflowServer, filled: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for name, uri, bulk in [
        ("http", pg_server.url, True),
        ("postgres", pg_server.backend_uri, True),
        ("client", pg_server.url, False),
    ]:
        folder = compare(uri, experiment="bulk-compare", out_dir=tmp_path / name, bulk=bulk)
        outputs[name] = (folder / "summary.csv").read_text()
    assert "bulk read failed" not in capfd.readouterr().err  # no silent fallback
    assert outputs["http"] == outputs["postgres"] == outputs["client"]
    assert outputs["http"].count("\n") >= 4  # a header and the three schedules
