"""lrexp.compare and lrexp.plots against a real MLflow SQLite store built with MlflowClient."""

from __future__ import annotations

import csv
import math
import re
import socket
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lrexp.compare import CompareError, compare, main
from lrexp.plots import (
    envelope,
    log_scale,
    new_figure,
    plot_learning_curves,
    plot_lr_plan,
    wants_log_scale,
)

VAL_STEPS = (9, 19, 29, 39)
N_STEPS = 40
T0 = 1_700_000_000_000  # run start times (ms)


@dataclass
class Spec:
    """One synthetic run as train.py would log it."""

    schedule: str
    optimizer: str
    lr: float
    seed: int
    val_acc: list[float]
    val_loss: list[float]
    wall_ms: int
    test: tuple[float, float] | None = (0.0, 0.0)
    status: str = "FINISHED"
    tags: dict[str, str] = field(default_factory=dict)
    lr_steps: int = N_STEPS

    @property
    def name(self) -> str:
        return f"{self.schedule}-{self.optimizer}-mlp-digits-s{self.seed}"


A = "cosine-sgd-mlp-digits"
B = "step-sgd-mlp-digits"
C = "cosine-adam-mlp-digits"
SPECS = [
    # A rerun that failed before the FINISHED run of the same seed: must not count.
    Spec("cosine", "sgd", 0.1, 0, [0.99], [0.1], 1000, None, "FAILED", lr_steps=5),
    Spec("cosine", "sgd", 0.1, 0, [.5, .7, .8, .75], [.9, .7, .6, .6], 4000, (.74, .62)),
    Spec("cosine", "sgd", 0.1, 1, [.6, .72, .7, .78], [.8, .6, .5, .5], 8000, (.77, .52)),
    Spec("cosine", "sgd", 0.1, 2, [.55, .81, .8, .79], [.8, .6, .5, .55], 6000, (.8, .57)),
    Spec("step", "sgd", 0.1, 0, [.6, .85, .86, .9], [.7, .4, .35, .3], 2000, (.88, .33)),
    Spec(
        "step", "sgd", 0.1, 1, [.3, .1], [2.0, math.nan], 1000, None, "FAILED",
        tags={"diverged": "true"}, lr_steps=20,
    ),
    Spec("cosine", "adam", 0.001, 0, [.9, .95, .96, .97], [.3, .2, .15, .1], 2000, (.96, .12)),
]  # fmt: skip


def log_run(client: MlflowClient, experiment_id: str, spec: Spec, index: int, **tags: str) -> str:
    start = T0 + index * 100_000
    run = client.create_run(
        experiment_id,
        start_time=start,
        run_name=spec.name,
        tags={
            "schedule": spec.schedule,
            "optimizer": spec.optimizer,
            "seed": str(spec.seed),
            **spec.tags,
            **tags,
        },
    )
    run_id = run.info.run_id
    params = {
        "schedule.name": spec.schedule,
        "optimizer.name": spec.optimizer,
        "optimizer.lr": str(spec.lr),
        "seed": str(spec.seed),
        "dataset.shuffle_seed": str(spec.seed),  # ${seed}
        "dataset.split_seed": "0",
        "paths.output_dir": f"/tmp/multirun/{index}",
        "trainer.max_epochs": "4",
    }
    points = [
        Metric("lr", spec.lr * 0.5 ** (step / 10), start + step, step)
        for step in range(spec.lr_steps)
    ]
    for step, acc, loss in zip(VAL_STEPS, spec.val_acc, spec.val_loss, strict=False):
        points += [Metric("val/acc", acc, start + step, step)]
        points += [Metric("val/loss", loss, start + step, step)]
    if spec.test is not None:
        points += [Metric("test/acc", spec.test[0], start + 99, N_STEPS)]
        points += [Metric("test/loss", spec.test[1], start + 99, N_STEPS)]
    client.log_batch(
        run_id,
        metrics=points,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag("output_dir", f"/tmp/multirun/{index}")],
    )
    client.set_terminated(run_id, spec.status, end_time=start + spec.wall_ms)
    return run_id


@dataclass
class Store:
    uri: str
    ids: list[str]
    parent: str
    lonely: str


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("exp")
    ids = [log_run(client, exp, spec, i) for i, spec in enumerate(SPECS)]
    sweep = client.create_experiment("sweep")
    parent = client.create_run(sweep, run_name="sweep-1", tags={"sweep": "parent"}).info.run_id
    for seed in (0, 1):
        spec = Spec("linear", "sgd", 0.05, seed, [0.5, 0.6], [1.0, 0.9], 1000, (0.6, 0.9))
        log_run(client, sweep, spec, 10 + seed, **{"mlflow.parentRunId": parent})
    lonely_spec = Spec("constant", "sgd", 0.1, 0, [0.5], [1.0], 500, (0.5, 1.0))
    lonely = log_run(client, sweep, lonely_spec, 20)
    return Store(uri, ids, parent, lonely)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row[next(iter(row))]: row for row in csv.DictReader(handle)}


def num(row: dict[str, str], key: str) -> float | None:
    return float(row[key]) if row[key] else None


def assert_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        width, height = image.size
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert width > 1000 and height > 400
    assert colors is not None and len(colors) > 50  # curves, text and antialiasing, not blank


@pytest.fixture(scope="module")
def by_config(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compare(store.uri, experiment="exp", out_dir=tmp_path_factory.mktemp("cmp"))


def test_one_row_per_configuration(by_config: Path, store: Store) -> None:
    for name in ("comparison.png", "summary.md", "summary.csv"):
        assert (by_config / name).is_file()
    assert_png(by_config / "comparison.png")
    rows = read_csv(by_config / "summary.csv")
    assert list(rows) == [C, B, A]  # mean test/acc (the tested metric) descending

    a = rows[A]
    assert a["n_seeds"] == "3" and a["seeds"] == "0 1 2" and a["status"] == "FINISHED"
    best = [0.8, 0.78, 0.81]
    assert num(a, "best_val_acc_mean") == pytest.approx(statistics.mean(best))
    assert num(a, "best_val_acc_std") == pytest.approx(statistics.stdev(best))
    assert num(a, "best_val_acc_step_mean") == pytest.approx(statistics.mean([29, 39, 19]))
    assert num(a, "best_val_acc_step_std") == pytest.approx(10.0)
    assert num(a, "final_val_acc_mean") == pytest.approx(statistics.mean([0.75, 0.78, 0.79]))
    assert num(a, "final_val_loss_mean") == pytest.approx(statistics.mean([0.6, 0.5, 0.55]))
    assert num(a, "test_acc_mean") == pytest.approx(statistics.mean([0.74, 0.77, 0.8]))
    assert num(a, "test_loss_std") == pytest.approx(statistics.stdev([0.62, 0.52, 0.57]))
    assert num(a, "ms_per_step_mean") == pytest.approx(150.0)  # 4000, 8000, 6000 ms / 40 steps
    assert num(a, "ms_per_step_std") == pytest.approx(50.0)
    assert store.ids[0] not in a["run_ids"]  # the failed rerun of seed 0 is left out

    b = rows[B]
    assert b["n_seeds"] == "2" and b["status"] == "1 FINISHED, 1 diverged"
    assert num(b, "best_val_acc_mean") == pytest.approx(0.6)  # (0.9 + 0.3) / 2
    assert num(b, "best_val_acc_step_mean") == pytest.approx((39 + 9) / 2)
    assert math.isnan(num(b, "final_val_loss_mean") or 0.0)  # the diverged run ended on NaN
    assert num(b, "test_acc_mean") == pytest.approx(0.88)  # only the finished run has one
    assert num(b, "test_acc_std") is None
    assert num(b, "ms_per_step_mean") == pytest.approx((2000 / 40 + 1000 / 20) / 2)

    c = rows[C]
    assert c["n_seeds"] == "1" and num(c, "best_val_acc_std") is None
    assert num(c, "best_val_acc_mean") == pytest.approx(0.97)
    assert num(c, "best_val_acc_step_mean") == 39
    # the params that tell configurations apart get their own columns; seeds and paths do not
    assert c["optimizer.name"] == "adam" and c["optimizer.lr"] == "0.001"
    assert {"seed", "dataset.shuffle_seed", "paths.output_dir"}.isdisjoint(c)


def descriptive_table(text: str) -> list[str]:
    """The lines of the descriptive table (mean ± sd) at the end of summary.md."""
    section = text.split("## All numbers (mean ± sd)", 1)[1]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_markdown_is_a_readable_table(by_config: Path) -> None:
    text = (by_config / "summary.md").read_text()
    table = descriptive_table(text)
    assert len(table) == 2 + 3
    assert len({len(line) for line in table}) == 1  # aligned columns
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[:3] == ["configuration", "seeds", "status"]
    assert "best val/acc" in header and "ms/step" in header
    assert table[2].split("|")[1].strip() == C
    assert f"{statistics.mean([0.8, 0.78, 0.81]):.4f} ± " in table[3]
    assert "1 FINISHED, 1 diverged" in table[4]
    assert "1 repeated run" in text and "comparison.png)" in text


@pytest.mark.parametrize("key", ["schedule.name", "schedule"])  # a param, then a tag
def test_group_by(store: Store, tmp_path: Path, key: str) -> None:
    import json

    compare(store.uri, experiment="exp", out_dir=tmp_path, group_by=key)
    groups = json.loads((tmp_path / "summary.json").read_text())["descriptive"]
    assert [g["label"] for g in groups] == [f"{key}=cosine", f"{key}=step"]
    cosine, step = groups
    assert cosine["n_runs"] == 4 and step["n_runs"] == 2
    best = [0.8, 0.78, 0.81, 0.97]
    mean, std = cosine["numbers"]["best_val_acc"]
    assert mean == pytest.approx(statistics.mean(best))
    assert std == pytest.approx(statistics.stdev(best))
    table = descriptive_table((tmp_path / "summary.md").read_text())
    assert table[0].split("|")[1].strip() == key and table[2].split("|")[1].strip() == "cosine"
    assert table[2].split("|")[2].strip() == "2"  # configurations in the group
    assert "1 FINISHED, 1 diverged" in table[3]
    assert_png(tmp_path / "comparison.png")


def test_client_fallback_gives_the_same_summary(store: Store, by_config: Path, tmp_path: Path):
    compare(store.uri, experiment="exp", out_dir=tmp_path, bulk=False)
    assert (tmp_path / "summary.csv").read_text() == (by_config / "summary.csv").read_text()


def test_parent_and_filter_selections(store: Store, tmp_path: Path) -> None:
    compare(store.uri, parent=store.parent, out_dir=tmp_path / "parent")
    rows = read_csv(tmp_path / "parent" / "summary.csv")
    assert (
        list(rows) == ["linear-sgd-mlp-digits"] and rows["linear-sgd-mlp-digits"]["n_seeds"] == "2"
    )

    # the experiment holds the sweep parent (no metrics): it is not a row
    compare(store.uri, experiment="sweep", out_dir=tmp_path / "sweep")
    assert set(read_csv(tmp_path / "sweep" / "summary.csv")) == {
        "linear-sgd-mlp-digits",
        "constant-sgd-mlp-digits",
    }

    compare(store.uri, filter_string="params.`optimizer.name` = 'adam'", out_dir=tmp_path / "f")
    assert list(read_csv(tmp_path / "f" / "summary.csv")) == [C]
    compare(store.uri, experiment="exp", filter_string="tags.seed = '1'", out_dir=tmp_path / "ef")
    assert list(read_csv(tmp_path / "ef" / "summary.csv")) == [A, B]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "unknown experiment 'nope' (known: "),
        (["--parent", "LONELY"], "has no child runs"),
        (["--parent", "0" * 32], "no run with id"),
        (["--filter", "params.seed = '42'"], "no runs in all experiments matching"),
        (["--filter", "not a filter"], "search failed"),
        (["--experiment", "exp", "--group-by", "nokey"], "no selected run has this param or tag"),
    ],
)
def test_cli_errors_are_one_line(
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    args = [store.lonely if a == "LONELY" else a for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["--tracking-uri", store.uri, *args, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lrexp-compare: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    missing = tmp_path / "nowhere" / "mlflow.db"
    foreign = tmp_path / "other.db"
    foreign.write_bytes(b"")
    cases = [
        (f"sqlite:///{missing}", "no MLflow database at"),
        (f"sqlite:///{foreign}", "is not an MLflow tracking database"),
        (f"http://127.0.0.1:{free_port()}", "the tracking server does not answer"),
    ]
    for uri, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["--tracking-uri", uri, "--experiment", "exp", "--out", str(tmp_path / "o")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not missing.parent.exists() and foreign.stat().st_size == 0  # nothing created


def test_compare_raises_for_in_process_callers(store: Store, tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="has no child runs"):
        compare(store.uri, parent=store.lonely, out_dir=tmp_path)


def test_cli_needs_a_selection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--tracking-uri", "sqlite:///x.db", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "one of --experiment, --parent or --filter" in capsys.readouterr().err


def test_cli_prints_the_verdict_table_then_the_files(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The verdicts are on the console, not only inside summary.md: one row per
    configuration with the numbers of summary.json, then the paths of the files."""
    import json

    main(["--tracking-uri", store.uri, "--experiment", "exp", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert [Path(p).name for p in lines[-5:]] == [
        "summary.md",
        "summary.csv",
        "summary.json",
        "report.html",
        "forest.png",
    ]
    summary = json.loads((tmp_path / "summary.json").read_text())
    heading, columns, *rows = lines[:-5]
    assert heading == (
        f"test/acc (higher is better) against {summary['baseline']}; verdicts after Holm over "
        f"{summary['family_size']} comparison(s), α = 0.05"
    )
    assert columns.split()[:4] == ["configuration", "verdict", "n", "mean"]
    assert len(rows) == len(summary["configurations"])

    def shown(value: float | None, sign: str = "") -> str:
        return "–" if value is None else f"{value:{sign}.4g}"

    for row, config in zip(rows, summary["configurations"], strict=True):
        cells = row.split()
        assert cells[:4] == [
            config["label"],
            config["verdict"],
            str(config["n"]),
            shown(config["mean"]),
        ]
        if config["label"] == summary["baseline"]:
            assert cells[4:] == ["–", "–", "–"]
            continue
        assert cells[4] == shown(config.get("delta"), "+")
        low, high = config.get("delta_low"), config.get("delta_high")
        interval = [f"[{shown(low, '+')},", f"{shown(high, '+')}]"] if low is not None else ["–"]
        assert cells[5:-1] == interval and cells[-1] == shown(config.get("p_holm"))


def test_a_store_path_without_a_scheme_and_a_missing_default_store_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--tracking-uri mlruns/mlflow.db`` printed MLflow's file-store text, cut mid-word; the
    default store (``sqlite:///mlruns/mlflow.db``) that is not there is named, not created."""
    monkeypatch.chdir(tmp_path)
    cases = [
        (
            ["--tracking-uri", "mlruns/mlflow.db"],
            "lrexp-compare: error: --tracking-uri: 'mlruns/mlflow.db' has no scheme, so MLflow 3 "
            "would take it for its retired file store; for a SQLite store write "
            "sqlite:///mlruns/mlflow.db (a server: http://host:port)",
        ),
        (
            [],
            "lrexp-compare: error: no MLflow database at mlruns/mlflow.db (from "
            "sqlite:///mlruns/mlflow.db); train in this folder first, or pass --tracking-uri",
        ),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--experiment", "lrexp", "--out", "cmp"])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == message + "\n"
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------- plots


def test_log_scale_rule() -> None:
    assert wants_log_scale([1.0, 0.5, 0.009])  # > 100x: log
    assert not wants_log_scale([1.0, 0.5, 0.011])
    assert not wants_log_scale([1.0, 0.5, 0.009], decades=2.5)
    assert not wants_log_scale([0.1, 0.002])  # 50x: linear
    assert wants_log_scale([0.0, 0.1, 1e-4])  # zeros are ignored
    assert not wants_log_scale([0.0, math.nan])


@pytest.mark.parametrize(
    ("low", "high", "plain"), [(1.3, 2.1, True), (0.9, 40.0, True), (1e-5, 1e-1, False)]
)
def test_log_axes_read_as_plain_decimals_where_the_range_is_narrow(
    low: float, high: float, plain: bool
) -> None:
    """A loss axis from 1.3 to 2.1 reads 1.4, 1.6, ..., not 1.4 × 10⁰; an LR axis over four
    decades keeps its powers of ten."""
    fig = new_figure(4, 3)
    ax = fig.add_subplot()
    ax.plot([0, 1], [low, high])
    log_scale(ax)
    fig.canvas.draw()
    labels = [
        t.get_text()
        for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
        if t.get_text() and low <= t.get_position()[1] <= high
    ]
    assert len(labels) >= 2, labels
    if plain:
        assert all(float(label) > 0 for label in labels), labels  # every one a plain number
    else:
        assert all("10^" in label for label in labels), labels  # mathtext powers of ten


def test_envelope_keeps_spikes_and_short_traces() -> None:
    steps = list(range(10_000))
    values = [math.sin(s / 3) for s in steps]
    values[7777] = 50.0
    kept_steps, kept_values = envelope(steps, values)
    assert len(kept_steps) <= 4000 and 7777 in kept_steps and max(kept_values) == 50.0
    assert kept_steps[0] == 0 and kept_steps[-1] == 9999 and kept_steps == sorted(kept_steps)
    assert envelope([1, 2], [3.0, 4.0]) == ([1, 2], [3.0, 4.0])


def test_run_plots(tmp_path: Path) -> None:
    planned = [0.1 * 0.5 ** (s / 10) for s in range(100)]
    observed = [(s, v * (1 + 1e-9)) for s, v in enumerate(planned)]
    out = plot_lr_plan(planned, observed, tmp_path / "lr.png", "plan vs trace")
    assert out == tmp_path / "lr.png" and out.stat().st_size > 10_000
    assert plot_lr_plan(planned, None, tmp_path / "plan.png", "plan").is_file()
    curves = {
        "train/loss": [(9, 1.0), (19, 0.5)],
        "val/loss": [(9, 1.2), (19, 0.7)],
        "train/acc": [(9, 0.5), (19, 0.8)],
        "val/acc": [(9, 0.4), (19, 0.7)],
        "test/acc": [(20, 0.72)],
        "epoch": [(9, 0.0), (19, 1.0)],  # neither panel: ignored
    }
    out = plot_learning_curves(curves, tmp_path / "sub" / "curves.png", "run")
    assert out.is_file() and out.stat().st_size > 10_000


def test_importing_lrexp_compare_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lrexp.compare, lrexp.plots; "
        "print('matplotlib' in sys.modules, 'mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_bench_compare_times_every_reader_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    from lrexp.bench.compare import main as bench_main
    from lrexp.tracking.localserver import postgres_bin

    bench_main(["--runs", "3", "--steps", "120", "--val-every", "40", "--server-workers", "1"])
    out = capsys.readouterr().out
    assert "store: 3 runs x 120 lr points (360 points)" in out
    rows = re.findall(r"^\| ([A-Za-z]+)[^|]*\| ([0-9.]+) \| ([0-9.]+)x \|$", out, re.M)
    readers = ["direct", "MlflowClient"]
    if postgres_bin() is not None:
        readers += ["direct", "HTTP", "HTTP"]
    assert [reader for reader, _, _ in rows] == readers
    assert "direct PostgreSQL" in out or postgres_bin() is None
    assert all(float(seconds) > 0 for _, seconds, _ in rows)
    assert rows[0][2] == "1.00"
    assert re.search(
        r"^same summary.csv: SQLite readers yes; PostgreSQL direct vs HTTP yes", out, re.M
    )


def test_verdict_lines_align_a_known_summary(tmp_path: Path) -> None:
    import json

    from lrexp.compare.console import verdict_lines

    summary = {
        "metric_label": "final val/loss",
        "higher_is_better": False,
        "baseline": "cosine",
        "family_size": 1,
        "alpha": 0.05,
        "configurations": [
            {"label": "cosine", "verdict": "baseline", "n": 5, "mean": 1.23456},
            {
                "label": "wsd-long-name",
                "verdict": "better",
                "n": 5,
                "mean": 1.2,
                "delta": -0.03456,
                "delta_low": -0.05,
                "delta_high": -0.012,
                "p_holm": 0.0123,
            },
        ],
    }
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert verdict_lines(path) == [
        "final val/loss (lower is better) against cosine; verdicts after Holm over 1 "
        "comparison(s), α = 0.05",
        "configuration  verdict   n   mean         Δ      95% CI of Δ  Holm p",
        "cosine         baseline  5  1.235         –                –       –",
        "wsd-long-name  better    5    1.2  -0.03456  [-0.05, -0.012]  0.0123",
    ]


def test_learning_curve_bands_stay_inside_the_metric_range() -> None:
    """Two seeds make a wide t interval: near accuracy 1 or loss 0 it left the range."""
    import numpy as np

    from lrexp.compare.figures import band

    mean, half = np.array([0.5, 0.98]), np.array([0.1, 0.2])
    low, high = band("val/acc", mean, half)
    assert low.tolist() == pytest.approx([0.4, 0.78]) and high.tolist() == pytest.approx([0.6, 1.0])
    low, high = band("val/loss", np.array([0.05]), np.array([0.2]))
    assert low.tolist() == [0.0] and high.tolist() == pytest.approx([0.25])
    low, high = band("test/excess", np.array([-1.0]), np.array([0.5]))
    assert low.tolist() == [0.0] and high.tolist() == [0.0]
    low, high = band("val/r2", np.array([-1.0]), np.array([0.5]))  # no known range: unclipped
    assert low.tolist() == [-1.5] and high.tolist() == [-0.5]
