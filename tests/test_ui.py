"""The MLflow UI, tested as a person uses it.

A real ``python train.py -m`` sweep fills a throwaway SQLite store, a real ``mlflow server``
serves it on 127.0.0.1, and headless Chromium (Debian's ``chromium``, driven by Playwright)
opens the experiment: the sweep's child runs must be listed and the ``lr`` metric charted.

Needs ``/usr/bin/chromium`` (or ``LREXP_CHROMIUM``) and ``playwright``: ``.ci/install-browser.sh``
installs both. ``LREXP_UPDATE_DOCS=1`` also copies the screenshot to ``docs/mlflow_ui.png``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from conftest import ROOT, run_cli
from lrexp.tracking.localserver import QUIET_SERVER_ENV, MlflowServer

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # CI machines may set http_proxy; the server is on loopback and must be reached directly.
    "--no-proxy-server",
]
SERVER_START_TIMEOUT = 90.0  # seconds; ~10 s on an idle 2-core machine
UI_TIMEOUT_MS = 60_000  # per Playwright wait; the UI is a React app that loads lazily
DOCS_SCREENSHOT = ROOT / "docs" / "mlflow_ui.png"


def chromium_path() -> str | None:
    """The system Chromium (Playwright's own browser download does not work offline)."""
    candidates = [os.environ.get("LREXP_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def loopback_works() -> bool:
    """Whether this sandbox lets a process connect to its own 127.0.0.1 listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        try:
            with socket.create_connection(server.getsockname(), timeout=5):
                return True
        except OSError:
            return False


@pytest.mark.slow
def test_mlflow_ui_shows_sweep_runs_and_lr_chart(tmp_path: Path) -> None:
    if not loopback_works():
        pytest.skip("this machine refuses TCP connections to 127.0.0.1, which the server needs")
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no Chromium at /usr/bin/chromium (LREXP_CHROMIUM): run .ci/install-browser.sh")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed: run .ci/install-browser.sh"
    )
    expect = sync_api.expect
    expect.set_options(timeout=UI_TIMEOUT_MS)
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = time.monotonic() - clock
        clock = time.monotonic()

    # Create (and migrate) the store first: the server then starts while the sweep trains,
    # as when a person keeps `mlflow server` open during a sweep.
    backend_uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    (tmp_path / "mlruns").mkdir()
    client = MlflowClient(backend_uri)
    client.search_experiments()
    lap("store")

    server = MlflowServer(backend_uri, tmp_path / "server")
    server.launch()
    try:
        # 1. A real sweep, run the way a user runs it: a parent run with two children.
        result = run_cli(
            [
                "-m",
                "schedule=step,cosine",
                "trainer.max_epochs=1",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
            ],
            cwd=tmp_path,
            env=QUIET_SERVER_ENV,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        experiment = client.get_experiment_by_name("lrexp")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
        (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert parent.info.run_name.startswith("sweep-")
        children = {r.info.run_name: r.info.run_id for r in runs if r is not parent}
        assert sorted(children) == ["cosine-sgd-mlp-digits-s0", "step-sgd-mlp-digits-s0"]
        lap("sweep")

        # 2. The server answers.
        server.wait_until_answering(SERVER_START_TIMEOUT)
        lap("server")

        # 3. A real browser.
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            # Offline CI: a request for anything but our server fails at once, never hangs.
            context.route(
                lambda url: not url.startswith(server.url) and not url.startswith("data:"),
                lambda route: route.abort(),
            )
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page_errors: list[str] = []
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            shot = tmp_path / "mlflow_ui.png"
            try:
                lr_card = check_ui(
                    sync_api, page, server.url, experiment.experiment_id, parent, children
                )
                # 5. Screenshots: the runs page with the lr chart, then the lr chart full screen.
                page.screenshot(path=str(shot))
                lr_card.locator('button[data-component-id="fullscreen_button_chartcard"]').click()
                dialog = page.get_by_role("dialog")
                expect(dialog.get_by_role("heading", name="lr", exact=True)).to_be_visible()
                for name in children:
                    expect(dialog.get_by_text(f"{name} (lr)", exact=True)).to_be_visible()
                page.screenshot(path=str(tmp_path / "mlflow_ui_lr.png"))
            except Exception as err:
                failure = tmp_path / "mlflow_ui_failure.png"
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(failure))
                raise AssertionError(
                    f"{err}\nat {page.url}\npage errors: {page_errors}\nscreenshot: {failure}\n"
                    f"server log:\n{server.log_tail()}"
                ) from err
            finally:
                browser.close()
        lap("ui")
    finally:
        server.kill()
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))

    assert shot.stat().st_size > 10_000
    if os.environ.get("LREXP_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def check_ui(
    sync_api: Any, page: Any, url: str, experiment_id: str, parent: Run, children: dict[str, str]
) -> Any:
    """Step 4: the sweep's runs are listed and an lr chart is drawn; returns the chart's card."""
    expect = sync_api.expect
    # The experiment's runs page in the "Model training" view (MLflow 3 opens GenAI first).
    page.goto(
        f"{url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning",
        wait_until="domcontentloaded",
    )
    parent_link = page.get_by_role("link", name=parent.info.run_name, exact=True)
    expect(parent_link).to_be_visible()
    expect(parent_link).to_have_attribute("href", re.compile(f"/runs/{parent.info.run_id}$"))

    # 4a. Expand the sweep's parent row (its +/- button): both child runs are listed.
    page.get_by_role("row").filter(has=parent_link).get_by_role("button").first.click()
    for name, run_id in children.items():
        child_link = page.get_by_role("link", name=name, exact=True)
        expect(child_link).to_be_visible()
        expect(child_link).to_have_attribute("href", re.compile(f"/runs/{run_id}$"))
    # The assistant side panel only narrows the screenshot: close it when it is open.
    with contextlib.suppress(sync_api.Error):
        page.get_by_role("button", name="Close", exact=True).click(timeout=3000)

    # 4b. Chart view, charts filtered to "lr": exactly one chart, titled lr, a line per child.
    page.locator("label").filter(
        has=page.locator('input[name="runs-view-mode"][value="CHART"]')
    ).click()
    page.get_by_placeholder("Search metric charts").fill("lr")
    lr_card = page.get_by_test_id("experiment-view-compare-runs-card").filter(
        has=page.get_by_role("heading", name="lr", exact=True)
    )
    expect(lr_card).to_have_count(1)
    expect(lr_card).to_be_visible()
    for name in children:  # the legend; its last entries may be clipped, hence not "visible"
        expect(lr_card.get_by_text(f"{name} (lr)", exact=True)).to_be_attached()
    traces = lr_card.locator(".js-plotly-plot .scatterlayer .trace")
    expect(traces.first).to_be_attached()
    assert traces.count() >= len(children), f"{traces.count()} plotted lines in the lr chart"
    return lr_card
