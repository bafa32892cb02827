"""The spill file on its own: append-only lines, the sent offset, a line cut by a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrexp.errors import ConfigError
from lrexp.tracking.spill import CloseRecord, SpillFile, check_unsent, close_record


def test_spill_file_replays_unsent_records_once_and_skips_a_cut_line(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path)
    assert not spill.exists() and not spill.pending()
    spill.start("run1", "http://alice:pw@host:5000", "exp")
    spill.start("run1", "http://ignored", "exp")  # the header is written once
    spill.append_points([("lr", 0.1, 1000, 0), ("lr", float("nan"), 1001, 1)])
    spill.append_close(CloseRecord("FINISHED", {"a": "b"}, ["/x/resolved_config.yaml"]))
    header = spill.header()
    assert (header.run_id, header.tracking_uri) == ("run1", "http://alice:***@host:5000")
    assert "pw" not in spill.path.read_text()
    records = list(spill.unsent())
    assert [r["kind"] for _, r in records] == ["metrics", "close"]
    assert records[0][1]["points"][0] == ["lr", 0.1, 1000, 0]
    assert close_record(records[1][1]) == CloseRecord(
        "FINISHED", {"a": "b"}, ["/x/resolved_config.yaml"]
    )
    spill.mark_sent(records[0][0])
    assert [r["kind"] for _, r in spill.unsent()] == ["close"]
    spill.mark_sent(records[1][0])
    assert not spill.pending()
    with spill.path.open("a") as handle:  # a crash in the middle of an append
        handle.write('{"kind":"metrics","points":[["lr",0.2')
    assert not spill.pending()
    assert spill.sent_offset() == records[1][0]


def test_a_new_run_refuses_a_folder_with_another_runs_unsent_records(tmp_path: Path) -> None:
    check_unsent(tmp_path, None)  # nothing kept: fine
    spill = SpillFile(tmp_path)
    spill.start("run1", "http://host:5000", "exp")
    spill.append_points([("lr", 0.1, 1000, 0)])
    check_unsent(tmp_path, "run1")  # resuming that run sends them itself
    with pytest.raises(ConfigError, match=f"send them first with: lrexp-sync {tmp_path}$"):
        check_unsent(tmp_path, None)
    spill.mark_sent(spill.path.stat().st_size)
    check_unsent(tmp_path, None)


def test_lrexp_sync_sends_every_run_under_a_sweep_folder_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from lrexp.tracking.store import TrackedRun
    from lrexp.tracking.sync import main

    uri = f"sqlite:///{tmp_path}/store.db"
    sweep = tmp_path / "sweep"
    run_ids = []
    for job in ("0", "1"):  # two jobs of a sweep, each with points kept during an outage
        run_id = TrackedRun(uri, "sweep", f"job{job}", {}).run_id
        spill = SpillFile(sweep / job)
        spill.start(run_id, uri, "sweep")
        spill.append_points([("lr", 0.1 / (step + 1), 1000 + step, step) for step in range(3)])
        run_ids.append(run_id)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    for expected in (
        [f"lrexp-sync: sent 3 points to run {run_id} at {uri}" for run_id in run_ids],
        [f"lrexp-sync: nothing to send: every record of run {r} is stored" for r in run_ids],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([str(sweep)])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.splitlines() == expected
    client = MlflowClient(uri)
    for run_id in run_ids:
        history = client.get_metric_history(run_id, "lr")
        assert sorted((m.step, m.value) for m in history) == [(0, 0.1), (1, 0.05), (2, 0.1 / 3)]

    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    missing = f"no unsent/records.jsonl in or under {tmp_path}/empty"
    assert capsys.readouterr().err == f"lrexp-sync: error: nothing to send: {missing}\n"
