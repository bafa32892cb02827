"""``lrexp-compare`` against a real PostgreSQL-backed ``mlflow server``: histories read in bulk
over HTTP, from the runs' history files and straight from PostgreSQL equal the client's,
answers cut at the server's limit are asked again, a history file that may miss points is not
used, and every path writes the same ``summary.csv``."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lrexp.compare import bulk_http, compare
from lrexp.compare.bulk_http import Voucher
from lrexp.compare.histories import client_histories, http_histories, postgres_histories
from lrexp.tracking.artifacts import log_history_file, stored_histories
from lrexp.tracking.history_file import TOKEN_TAG
from lrexp.tracking.localserver import MlflowServer
from lrexp.tracking.store import TrackedRun

LR_STEPS = 3000
VAL_EVERY = 100
KEYS = ["lr", "val/acc", "val/loss"]


def log_run(
    server: MlflowServer, experiment_id: str, index: int, folder: Path, with_file: bool
) -> str:
    """A finished run of schedule ``index % 3`` and seed ``index // 3``, through the server;
    with ``with_file``, ended as lrexp ends a run: with its history file."""
    client = MlflowClient(server.url)
    now = int(time.time() * 1000)
    schedule, seed = ("cosine", "step", "linear")[index % 3], index // 3
    run = client.create_run(experiment_id, start_time=now, run_name=f"{schedule}-s{seed}")
    run_id = run.info.run_id
    params = [Param("schedule.name", schedule), Param("seed", str(seed))]
    client.log_batch(run_id, params=params, tags=[RunTag("schedule", schedule)])
    decay = 1 + index % 3
    metrics = [Metric("lr", 0.1 * math.exp(-decay * t / LR_STEPS), now, t) for t in range(LR_STEPS)]
    for t in range(VAL_EVERY, LR_STEPS + 1, VAL_EVERY):
        accuracy = 0.9 + 0.09 * t / LR_STEPS - 0.001 * decay + 0.0001 * seed
        loss = math.nan if (index, t) == (4, VAL_EVERY) else 1 - accuracy
        metrics += [Metric("val/acc", accuracy, now, t), Metric("val/loss", loss, now, t)]
    metrics.append(Metric("test/acc", 0.95, now, LR_STEPS))
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    if with_file:
        tracked = TrackedRun(server.url, "", "", {}, run_id=run_id)
        folder.mkdir(parents=True, exist_ok=True)
        log_history_file(tracked, stored_histories(tracked), folder)
    client.set_terminated(run_id, "FINISHED", end_time=now + LR_STEPS)
    return run_id


@pytest.fixture(scope="module")
def filled(
    pg_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Six finished runs (3 schedules x 2 seeds) logged through the server, the first four
    with history files; their ids."""
    experiment_id = MlflowClient(pg_server.url).create_experiment("bulk-compare")
    folder = tmp_path_factory.mktemp("history-files")
    yield [log_run(pg_server, experiment_id, i, folder / str(i), i < 4) for i in range(6)]


def vouchers_of(server: MlflowServer, run_ids: list[str]) -> dict[str, Voucher]:
    """What ``lrexp-compare`` checks each run's history file against."""
    client = MlflowClient(server.url)
    runs = [client.get_run(run_id) for run_id in run_ids]
    return {
        run.info.run_id: (run.data.tags[TOKEN_TAG], run.data.metrics)
        for run in runs
        if TOKEN_TAG in run.data.tags
    }


def bulk_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The run ids that go on to the bulk endpoint (filled in as ``http_histories`` runs)."""
    asked: list[str] = []
    first_jobs = bulk_http.first_jobs

    def recording(run_ids: list[str], keys: list[str]) -> list[bulk_http.Job]:
        asked.extend(run_ids)
        return first_jobs(run_ids, keys)

    monkeypatch.setattr(bulk_http, "first_jobs", recording)
    return asked


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


def test_history_files_stand_in_for_the_bulk_endpoint_only_when_they_hold_the_store(
    pg_server: MlflowServer, filled: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient(pg_server.url)
    expected = client_histories(client, filled, KEYS)
    asked = bulk_asked(monkeypatch)
    assert same(
        http_histories(pg_server.url, filled, KEYS, vouchers_of(pg_server, filled)), expected
    )
    assert asked == filled[4:]  # the four runs with a file were read from it

    experiment_id = client.create_experiment("stale-history-files")
    fresh, retagged, grown, reopened = (
        log_run(pg_server, experiment_id, i, tmp_path / str(i), with_file=True) for i in range(4)
    )
    client.set_tag(retagged, TOKEN_TAG, "another-token")  # not the file's token
    client.log_metric(grown, "lr", 0.5, step=LR_STEPS)  # logged after the file was written
    TrackedRun(pg_server.url, "", "", {}, run_id=reopened).reopen()  # a resume drops the tag
    assert TOKEN_TAG not in client.get_run(reopened).data.tags
    runs = [fresh, retagged, grown, reopened]
    expected = client_histories(client, runs, KEYS)
    assert expected[grown]["lr"][-1] == (LR_STEPS, 0.5)
    asked.clear()
    assert same(http_histories(pg_server.url, runs, KEYS, vouchers_of(pg_server, runs)), expected)
    assert sorted(asked) == sorted([retagged, grown, reopened])


def test_compare_over_http_and_postgres_write_the_same_summary(
    pg_server: MlflowServer, filled: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for name, uri, bulk, files in [
        ("http", pg_server.url, True, True),
        ("http-bulk", pg_server.url, True, False),
        ("postgres", pg_server.backend_uri, True, True),
        ("client", pg_server.url, False, True),
    ]:
        folder = compare(
            uri, experiment="bulk-compare", out_dir=tmp_path / name, bulk=bulk, history_files=files
        )
        outputs[name] = (folder / "summary.csv").read_text()
    assert "bulk read failed" not in capfd.readouterr().err  # no silent fallback
    assert outputs["http"] == outputs["http-bulk"] == outputs["postgres"] == outputs["client"]
    assert outputs["http"].count("\n") >= 4  # a header and the three schedules
