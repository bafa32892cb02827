"""The statistics of ``lrexp-compare``: checked against the libraries, by simulation and end to
end on synthetic runs with known effects written into a real SQLite store through MLflow."""

from __future__ import annotations

import csv
import gc
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from conftest import experiment_id
from lrexp.compare import main
from lrexp.compare.calibration import coverage, false_calls, simulated_power, verdict_rate
from lrexp.compare.stats import ALPHA, SEED
from lrexp.compare.stats.pairwise import (
    normality_p,
    paired_stats,
    paired_test,
    rank_sum_p,
    signed_rank_p,
)
from lrexp.compare.stats.power import holm, seeds_needed

SEEDS = range(10)
VAL_SIZE = 500
Digest = Callable[[str, int], dict[str, str]]


def same_start(arm: str, seed: int) -> dict[str, str]:
    return {"init_digest": f"init{seed}", "order_digest": f"order{seed}"}


def write_sweep(
    uri: str, arms: dict[str, list[float]], digests: Digest | None = same_start, test: bool = True
) -> str:
    """A sweep parent with one child per (arm, seed): test/acc as given (unless ``test`` is
    false), val curves around it."""
    client = MlflowClient(uri)
    exp = client.create_experiment("verdicts")
    parent = client.create_run(exp, run_name="sweep", tags={"sweep": "parent"}).info.run_id
    for index, (arm, values) in enumerate(arms.items()):
        for seed, acc in enumerate(values):
            tags = {"mlflow.parentRunId": parent, "schedule": arm, "seed": str(seed)}
            tags |= digests(arm, seed) if digests else {}
            run = client.create_run(exp, run_name=f"{arm}-sgd-mlp-digits-s{seed}", tags=tags)
            run_id, t0 = run.info.run_id, 1_700_000_000_000 + 1000 * (10 * index + seed)
            params = {"schedule.name": arm, "optimizer.name": "sgd", "seed": str(seed)}
            params |= {"dataset.val_size": str(VAL_SIZE), "dataset.shuffle_seed": str(seed)}
            curve = [(10, acc - 0.2), (20, acc - 0.05), (30, acc)]
            points = [Metric("lr", 0.1 / (1 + s), t0 + s, s) for s in range(30)]
            points += [Metric("val/acc", v, t0 + s, s) for s, v in curve]
            points += [Metric("val/loss", 1.0 - v, t0 + s, s) for s, v in curve]
            points += [Metric("test/acc", acc, t0 + 40, 30)] if test else []
            client.log_batch(run_id, points, [Param(k, v) for k, v in params.items()], [])
            client.set_terminated(run_id, "FINISHED", end_time=t0 + 500)
    return parent


def known_effects() -> dict[str, list[float]]:
    """cosine (the baseline), big (+0.03), same (Δ 0 within 0.0005) and worse (−0.02) over
    10 seeds sharing a seed effect; test accuracies on 1000 examples."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0.0, 0.006, len(SEEDS))
    base = 0.95 + seed_effect

    def arm(shift: float, sd: float) -> list[float]:
        values = base + shift + rng.normal(0.0, sd, len(SEEDS))
        return [round(float(v), 3) for v in values]

    return {
        "cosine": [round(float(v), 3) for v in base],
        "big": arm(0.03, 0.002),
        "same": arm(0.0, 0.0004),
        "worse": arm(-0.02, 0.002),
    }


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["configuration"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def effects(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    root = tmp_path_factory.mktemp("effects")
    uri = f"sqlite:///{root}/mlflow.db"
    parent = write_sweep(uri, known_effects())
    return uri, parent, root


@pytest.fixture
def frozen_gc() -> Iterator[None]:
    """``multipletests(method="holm")`` calls ``gc.collect()`` every time; freezing the heap
    makes that cheap in the simulations below (thousands of calls)."""
    gc.freeze()
    yield
    gc.unfreeze()


# ------------------------------------------------------------- the libraries' numbers


def test_holm_equals_statsmodels_and_skips_missing_p() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    with_nan = holm([0.01, math.nan, 0.04])
    assert math.isnan(with_nan[1])
    assert [with_nan[0], with_nan[2]] == pytest.approx(
        list(multipletests([0.01, 0.04], method="holm")[1])
    )


def test_rank_tests_equal_scipy() -> None:
    free = np.array([0.3, -0.1, 0.5, 0.25, 0.7, -0.05, 0.45, 0.6, 0.15, 0.35])
    assert signed_rank_p(free) == pytest.approx(sps.wilcoxon(free, method="exact").pvalue)
    assert signed_rank_p(free) == pytest.approx(10 / 1024)  # R- = 3: 5 of 1024 sign sets, twice
    tied = np.array([0.002, -0.004, 0.002, 0.0, 0.006, 0.002, -0.002, 0.004, 0.008, 0.002])
    scipy_tied = sps.wilcoxon(
        tied, method=sps.PermutationMethod(n_resamples=2**16, rng=np.random.default_rng(0))
    ).pvalue
    assert signed_rank_p(tied) == pytest.approx(scipy_tied)
    assert signed_rank_p(np.array([1.0, 2.0, 3.0])) == 0.25  # 3 seeds: never below 2/2^3
    a, b = np.array([0.91, 0.93, 0.92, 0.95]), np.array([0.9, 0.9, 0.88, 0.91, 0.89])
    assert rank_sum_p(a, b) == pytest.approx(sps.mannwhitneyu(a, b, method="exact").pvalue)
    a_tied = np.array([0.91, 0.9, 0.92, 0.95])
    scipy_u = sps.mannwhitneyu(
        a_tied, b, method=sps.PermutationMethod(n_resamples=2**16, rng=np.random.default_rng(0))
    ).pvalue
    assert rank_sum_p(a_tied, b) == pytest.approx(scipy_u)


def test_paired_t_test_equals_scipy_and_auto_picks_the_test_by_seeds() -> None:
    # the 3 seeds of WSD against cosine on Tiny Shakespeare: d = -0.059, -0.065, -0.065
    arm, base = np.array([1.801, 1.82, 1.79]), np.array([1.86, 1.885, 1.855])
    stats = paired_stats(arm, base, 0.0)
    assert stats.test == "t" and stats.p < 0.01
    assert stats.p == pytest.approx(sps.ttest_rel(arm, base).pvalue)
    assert stats.normality_p == pytest.approx(sps.shapiro(arm - base).pvalue)
    assert paired_stats(arm, base, 0.0, test="rank").p == 0.25  # 3 seeds: never below 2/2^3
    # ten seeds: auto takes the rank test, which needs no normal differences
    wild = np.array([0.1, 0.12, 0.09, 0.11, 0.1, 0.13, 0.08, 0.1, 0.12, 5.0])
    assert normality_p(wild) < 0.05  # one wild difference: Shapiro-Wilk rejects normality
    assert paired_test(wild, "auto") == ("signed-rank", signed_rank_p(wild))
    assert paired_test(wild, "t") == ("t", pytest.approx(sps.ttest_1samp(wild, 0).pvalue))
    assert paired_test(wild[:5], "auto")[0] == "t"  # five: the rank test could call nothing
    assert paired_test(np.array([0.2, 0.2, 0.2]), "t") == ("t", 0.0)  # no spread: t infinite
    with pytest.raises(ValueError, match="test must be one of auto, rank, t"):
        paired_test(wild, "z")


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["normal", "heavy"])
def test_few_seed_tests_keep_alpha_and_gain_power(noise: str) -> None:
    """Null effects at 3, 5 and 10 seeds, normal and heavy-tailed (Student t, 2 df)
    differences: auto and t call better/worse at most α of the time (a one-sided binomial test
    does not reject rate <= α); on an effect of 2 sd the rank test can call nothing below 6
    seeds, the t-test (and auto) often can."""
    sims = 1500
    for n in (3, 5, 10):
        for test in ("auto", "t"):
            rate = verdict_rate(test, noise, n, 0.0, sims, seed=n)
            count = round(rate * sims)
            assert sps.binomtest(count, sims, ALPHA, alternative="greater").pvalue > 0.01, (n, test)
    if noise == "normal":
        assert verdict_rate("rank", noise, 5, 2.0, 500, seed=1) == 0.0
        assert verdict_rate("auto", noise, 3, 2.0, 500, seed=1) > 0.35
        assert verdict_rate("auto", noise, 5, 2.0, 500, seed=1) > 0.8


def test_verdict_follows_the_metric_direction() -> None:
    from lrexp.compare.stats.pairwise import verdict

    assert verdict(-0.1, 0.01, math.nan, higher_is_better=False) == "better"  # lower loss
    assert verdict(-0.1, 0.01, math.nan, higher_is_better=True) == "worse"
    assert verdict(0.001, 0.2, 0.01, higher_is_better=True) == "equivalent"
    assert verdict(0.001, 0.2, 0.2, higher_is_better=True) == "inconclusive"
    assert verdict(0.05, 0.04, 0.01, higher_is_better=True) == "better"  # a real, tiny Δ


# ------------------------------------------------------------------------ simulations


@pytest.mark.slow
def test_no_effect_rarely_gives_better_or_worse(frozen_gc: None) -> None:
    """400 sweeps of 5 equal configurations x 10 seeds, accuracies on 500 examples (ties),
    baseline = the best mean as by default: sweeps with any better/worse verdict stay within
    the familywise α (a one-sided binomial test does not reject rate <= α)."""
    sweeps = 400
    count = false_calls(sweeps, k=5, n=10, seed=1)
    print(f"false better/worse: {count} of {sweeps} sweeps ({count / sweeps:.3f})")
    assert sps.binomtest(count, sweeps, ALPHA, alternative="greater").pvalue > 0.01


def test_bca_interval_covers_the_true_mean() -> None:
    """1000 studies of 100 normal values: a BCa interval of the mean is about
    sqrt((n-1)/n) too narrow, which costs little coverage only at this size (3 seeds: 0.73,
    10 seeds: 0.91 in the README's calibration)."""
    share = coverage(studies=1000, n=100, seed=2)
    print(f"BCa coverage: {share:.3f} (1000 studies of 100 values)")
    assert 0.93 <= share <= 0.97


# --------------------------------------------------------------- end to end: store + CLI


def test_known_effects_get_their_verdicts(
    effects: tuple[str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, parent, _ = effects
    out = tmp_path / "cmp"
    main(
        [
            *("--tracking-uri", uri, "--parent", parent, "--out", str(out)),
            *("--baseline", "cosine", "--test", "rank"),
        ]
    )
    captured = capsys.readouterr()
    assert "pairing" not in captured.err  # every pair proven by its digests
    rows = read_csv(out / "summary.csv")
    label = {arm: f"{arm}-sgd-mlp-digits" for arm in known_effects()}
    assert rows[label["cosine"]]["verdict"] == "baseline"
    assert rows[label["big"]]["verdict"] == "better"
    assert rows[label["worse"]]["verdict"] == "worse"
    assert rows[label["same"]]["verdict"] == "equivalent"  # within 1/500
    assert next(iter(rows)) == label["big"]  # sorted by mean, best first

    values = known_effects()
    base = np.array(values["cosine"])
    raw = [sps.wilcoxon(np.array(values[a]) - base).pvalue for a in ("big", "same", "worse")]
    for arm, p in zip(("big", "same", "worse"), raw, strict=True):
        diff = np.array(values[arm]) - base
        assert float(rows[label[arm]]["delta"]) == pytest.approx(diff.mean())
        assert rows[label[arm]]["paired"] == "yes" and rows[label[arm]]["n"] == "10"
        if len(np.unique(np.abs(diff))) == len(diff) and np.all(diff != 0):
            assert float(rows[label[arm]]["p"]) == pytest.approx(p)
    ps = [float(rows[label[a]]["p"]) for a in ("big", "same", "worse")]
    holm_p = multipletests(ps, method="holm")[1]
    for arm, p in zip(("big", "same", "worse"), holm_p, strict=True):
        assert float(rows[label[arm]]["p_holm"]) == pytest.approx(p)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"] == label["cosine"] and summary["family_size"] == 3
    assert summary["equivalence_margin"] == pytest.approx(1 / VAL_SIZE)
    assert summary["friedman"]["p"] < 0.001 and summary["top_group"] == [label["big"]]
    first = {c["label"]: c["p_first"] for c in summary["configurations"]}
    assert first[label["big"]] == 1.0 and sum(first.values()) == pytest.approx(1.0)

    text = (out / "summary.md").read_text()
    assert "## Verdicts against cosine-sgd-mlp-digits" in text and "Legend:" in text
    assert "Friedman test blocked by seed" in text and "Top group" in text
    for name in ("forest", "learning_curves", "paired_seeds", "beats_heatmap", "cd_diagram"):
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert f"]({name}.png)" in text
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(parent, "cmp")}
    expected = {"report.html", "summary.json", "forest.png", "cd_diagram.png"}
    assert {f"cmp/{name}" for name in expected} <= artifacts  # a folder named like --out


def test_broken_pairing_is_detected_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(arm: str, seed: int) -> dict[str, str]:
        tags = same_start(arm, seed)
        if arm == "big" and seed == 3:
            tags["init_digest"] = "other"
        return tags

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    values = known_effects()
    parent = write_sweep(uri, {a: values[a] for a in ("cosine", "big", "same")}, broken)
    out = tmp_path / "cmp"
    main(["--tracking-uri", uri, "--parent", parent, "--out", str(out), "--baseline", "cosine"])
    line = (
        "lrexp-compare: pairing broken: big-sgd-mlp-digits vs cosine-sgd-mlp-digits: "
        "init_digest differs on seed 3; unpaired statistics used\n"
    )
    assert line in capsys.readouterr().err
    rows = read_csv(out / "summary.csv")
    big, same = rows["big-sgd-mlp-digits"], rows["same-sgd-mlp-digits"]
    assert big["paired"] == "no" and big["pairing"] == "init_digest differs on seed 3"
    permutations = sps.PermutationMethod(n_resamples=2**16, rng=np.random.default_rng(SEED))
    unpaired = sps.mannwhitneyu(values["big"], values["cosine"], method=permutations).pvalue
    assert float(big["p"]) == pytest.approx(unpaired)  # tied accuracies: a permutation test
    assert same["paired"] == "yes"
    assert "init_digest differs on seed 3" in (out / "summary.md").read_text()


def test_runs_without_digests_are_compared_unpaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    values = known_effects()
    parent = write_sweep(uri, {a: values[a] for a in ("cosine", "big")}, digests=None)
    main(["--tracking-uri", uri, "--parent", parent, "--out", str(tmp_path / "o"), "--no-log"])
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("lrexp-compare")]
    assert len(err) == 1 and "pairing not proven for 1 of 1 comparisons" in err[0]
    assert read_csv(tmp_path / "o" / "summary.csv")["cosine-sgd-mlp-digits"]["paired"] == "no"
    assert not MlflowClient(uri).list_artifacts(parent)  # --no-log


def test_plan_seeds_agrees_with_a_power_simulation(
    effects: tuple[str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seeds --plan-seeds prints for a comparison reach 80 % power with the real test (at
    Holm's first step) within two seeds: simulated normal differences with the pilot's sd."""
    uri, parent, _ = effects
    delta = 0.002
    args = ["--tracking-uri", uri, "--parent", parent, "--out", str(tmp_path), "--no-log"]
    main([*args, "--baseline", "cosine", "--filter", "tags.schedule != 'worse'"])
    main([*args, "--baseline", "cosine", "--plan-seeds", str(delta)])
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.strip().startswith("same-sgd-mlp-digits:"))
    planned = int(float(line.split(":")[1]))
    summary = json.loads((tmp_path / "summary.json").read_text())
    m = summary["family_size"]
    values = known_effects()
    sd = float(np.std(np.array(values["same"]) - np.array(values["cosine"]), ddof=1))
    assert planned == seeds_needed(delta, sd, m, paired=True)

    def power(n: int) -> float:
        return simulated_power(delta, sd, n, m, sims=2000, seed=n)

    print(f"planned {planned} seeds (sd {sd:.5f}, m {m})")
    assert 5 <= planned <= 40
    assert power(planned + 2) >= 0.8
    assert power(max(planned - 2, 2)) < 0.8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "nosuch"], "--baseline nosuch: matches none of the configurations"),
        (["--metric", "nosuch"], "--metric nosuch: unknown; choose one of test_acc"),
        (["--metric", "steps_to_target"], "needs --target"),
    ],
)
def test_option_errors_are_one_line(
    effects: tuple[str, str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    uri, parent, _ = effects
    with pytest.raises(SystemExit) as exit_info:
        main(["--tracking-uri", uri, "--parent", parent, "--out", str(tmp_path / "o"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lrexp-compare: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_equivalence_must_be_positive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--tracking-uri", "sqlite:///x.db", "--experiment", "e", "--equivalence", "-1"])
    assert exit_info.value.code == 2
    assert "must be a finite number > 0, got '-1'" in capsys.readouterr().err


def test_report_html_shows_the_verdicts_and_the_forest_plot_in_chromium(
    effects: tuple[str, str, Path], tmp_path: Path
) -> None:
    """report.html, opened from disk in a real headless Chromium, with every request but the
    page itself refused: the verdict table and the forest plot must show (self-contained)."""
    from test_ui import CHROMIUM_ARGS, chromium_path

    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no Chromium at /usr/bin/chromium (LREXP_CHROMIUM): run .ci/install-browser.sh")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    uri, parent, _ = effects
    out = tmp_path / "cmp"
    main(["--tracking-uri", uri, "--parent", parent, "--out", str(out), "--no-log"])
    page_url = (out / "report.html").as_uri()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.route(lambda url: url != page_url, lambda route: route.abort())
            page = context.new_page()
            page.goto(page_url)
            table = page.locator("table#verdicts")
            sync_api.expect(table).to_be_visible()
            rows = table.locator("tbody tr")
            assert rows.count() == 4
            first = [c.strip() for c in rows.nth(0).locator("td").all_inner_texts()]
            assert first[:2] == ["big-sgd-mlp-digits", "baseline"]
            verdicts = sorted(v.strip() for v in table.locator("td.verdict").all_inner_texts())
            assert verdicts == ["baseline", "worse", "worse", "worse"]
            forest = page.locator("img#forest")
            sync_api.expect(forest).to_be_visible()
            width = forest.evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 500  # decoded from the inlined PNG
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.slow
def test_real_sweep_then_lrexp_compare_parent(tmp_path: Path) -> None:
    """A real sweep (2 schedules x 3 seeds, one epoch on digits): its parent run gets the
    report, and ``python -m lrexp.compare --parent`` writes every file of it again."""
    import subprocess
    import sys

    from conftest import run_cli

    result = run_cli(
        [
            "-m",
            "schedule=constant,cosine",
            "seed=0,1,2",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id(client, "lrexp")])
    (parent,) = [r.info.run_id for r in runs if r.data.tags.get("sweep") == "parent"]
    logged = {a.path for a in client.list_artifacts(parent)}
    figures = {"forest.png", "learning_curves.png", "paired_seeds.png", "beats_heatmap.png"}
    figures |= {"cd_diagram.png"}
    files = {"summary.md", "summary.csv", "summary.json", "report.html"}
    assert figures | files | {"comparison.png"} <= logged

    out = tmp_path / "again"
    cmd = [sys.executable, "-m", "lrexp.compare", "--tracking-uri", uri, "--parent", parent]
    done = subprocess.run(
        [*cmd, "--out", str(out), "--no-log"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == figures | files | {"comparison.png"}
    rows = read_csv(out / "summary.csv")
    assert sorted(rows) == ["constant-sgd-mlp-digits", "cosine-sgd-mlp-digits"]
    assert {r["n"] for r in rows.values()} == {"3"}
    verdicts = {r["verdict"] for r in rows.values()}
    assert "baseline" in verdicts and len(verdicts) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["equivalence_margin"] == pytest.approx(1 / 180)  # digits: 180 val examples
    for c in summary["configurations"]:
        assert len(c["values"]) == 3 and all(0.5 < v <= 1.0 for v in c["values"].values())
    assert "## Verdicts against" in (out / "summary.md").read_text()
    assert 'id="verdicts"' in (out / "report.html").read_text()


def test_anytime_metrics_and_a_metric_no_run_has(
    effects: tuple[str, str, Path], tmp_path: Path
) -> None:
    """The area under val/acc is its mean over the steps (here test/acc − 0.075 by
    construction); steps to a target is the first validation step reaching it; a metric that
    no run logged still gives a report, without verdicts."""
    from lrexp.compare import compare

    uri, parent, _ = effects
    values = known_effects()
    out = compare(uri, parent=parent, out_dir=tmp_path / "auc", metric="val_acc_auc",
                  log_to_parent=False)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    by_label = {c["label"]: c for c in summary["configurations"]}
    cosine = by_label["cosine-sgd-mlp-digits"]["values"]
    assert [cosine[str(s)] for s in SEEDS] == pytest.approx([v - 0.075 for v in values["cosine"]])
    assert summary["equivalence_margin"] == pytest.approx(1 / VAL_SIZE)

    out = compare(uri, parent=parent, out_dir=tmp_path / "steps", metric="steps_to_target",
                  target=0.93, log_to_parent=False)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    by_label = {c["label"]: c for c in summary["configurations"]}
    expected = {str(s): 20.0 if v - 0.05 >= 0.93 else 30.0 for s, v in enumerate(values["big"])}
    assert by_label["big-sgd-mlp-digits"]["values"] == expected
    never = [s for s, v in enumerate(values["worse"]) if v < 0.93]
    assert by_label["worse-sgd-mlp-digits"]["n"] == len(SEEDS) - len(never)
    assert summary["higher_is_better"] is False and summary["equivalence_margin"] is None

    untested = f"sqlite:///{tmp_path}/untested.db"
    parent = write_sweep(untested, {a: values[a] for a in ("cosine", "big")}, test=False)
    out = compare(untested, parent=parent, out_dir=tmp_path / "none", log_to_parent=False)
    summary = json.loads((out / "summary.json").read_text())
    # no run has test/acc (a data module without a test split): the task's objective decides
    assert summary["metric"] == "best_val_acc" and summary["family_size"] == 1
    assert {c["n"] for c in summary["configurations"]} == {len(SEEDS)}
    out = compare(untested, parent=parent, out_dir=tmp_path / "asked", metric="test/acc",
                  log_to_parent=False)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["family_size"] == 0 and {c["n"] for c in summary["configurations"]} == {0}
    assert "no value of test/acc for: " in summary["notes"][0]
    assert "best val/acc" in (out / "summary.md").read_text()  # the descriptive table
