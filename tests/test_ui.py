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
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT, run_cli

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Quiet, offline, single-process server: no telemetry, no job-runner processes.
SERVER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@contextlib.contextmanager
def mlflow_server(backend_uri: str, cwd: Path) -> Iterator[tuple[str, Path]]:
    """Run ``mlflow server`` on a free 127.0.0.1 port; yield (base URL, log file); always stop it."""
    port = free_port()
    log = cwd / "mlflow-server.log"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("w") as out:
        # Own session, so the server and its uvicorn worker are stopped together.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **SERVER_ENV},
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up after {SERVER_START_TIMEOUT}s:\n{log_tail(log)}")
            time.sleep(0.25)
        yield base, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.mark.slow
def test_mlflow_ui_shows_sweep_runs_and_lr_chart(tmp_path: Path) -> None:
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no Chromium at /usr/bin/chromium (LREXP_CHROMIUM): run .ci/install-browser.sh")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed: run .ci/install-browser.sh"
    )

    # 1. A real sweep, run the way a user runs it.
    started = time.monotonic()
    result = run_cli(
        [
            "-m",
            "schedule=step,cosine",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        cwd=tmp_path,
        env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    backend_uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(backend_uri)
    experiment = client.get_experiment_by_name("lrexp")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name for r in runs} - {p.info.run_name for p in parents}
    assert len(parents) == 1 and parents[0].info.run_name.startswith("sweep-")
    assert children == {"step-sgd-mlp-digits-s0", "cosine-sgd-mlp-digits-s0"}
    parent_name = parents[0].info.run_name
    sweep_s = time.monotonic() - started

    # 2. A real server, 3. a real browser.
    expect = sync_api.expect
    with (
        mlflow_server(backend_uri, tmp_path) as (base, server_log),
        sync_api.sync_playwright() as playwright,
    ):
        server_s = time.monotonic() - started - sweep_s
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        # Offline CI: anything but our server is refused at once instead of hanging.
        context.route(
            lambda url: not url.startswith(base) and not url.startswith("data:"),
            lambda route: route.abort(),
        )
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        page_errors: list[str] = []
        page.on("pageerror", lambda err: page_errors.append(str(err)))
        try:
            # The experiment's runs page, "Model training" view (the default is GenAI).
            page.goto(
                f"{base}/#/experiments/{experiment.experiment_id}/runs"
                "?workflowType=machine_learning",
                wait_until="domcontentloaded",
            )
            parent_link = page.get_by_role("link", name=parent_name, exact=True)
            expect(parent_link).to_be_visible()
            # 4a. Expand the sweep's parent row: its two child runs are listed.
            parent_row = page.get_by_role("row").filter(has=parent_link)
            parent_row.get_by_role("button").first.click()  # the row's +/- toggle
            for name in sorted(children):
                expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
            # The assistant side panel only narrows the screenshot: close it if it is open.
            with contextlib.suppress(sync_api.Error):
                page.get_by_role("button", name="Close", exact=True).click(timeout=3000)

            # 4b. Chart view, charts filtered to "lr": one chart titled lr, a line per child.
            page.locator("label").filter(
                has=page.locator('input[name="runs-view-mode"][value="CHART"]')
            ).click()
            page.get_by_placeholder("Search metric charts").fill("lr")
            cards = page.get_by_test_id("experiment-view-compare-runs-card")
            lr_card = cards.filter(has=page.get_by_role("heading", name="lr", exact=True))
            expect(lr_card).to_have_count(1)
            expect(lr_card).to_be_visible()
            for name in sorted(children):
                expect(lr_card.get_by_text(f"{name} (lr)", exact=True)).to_be_visible()
            traces = lr_card.locator(".js-plotly-plot .scatterlayer .trace")
            expect(traces.first).to_be_attached()
            assert traces.count() >= len(children), f"{traces.count()} plotted traces"

            # 5. Screenshots: the runs page, then the lr chart full screen.
            shot = tmp_path / "mlflow_ui.png"
            page.screenshot(path=str(shot))
            lr_card.locator('button[data-component-id="fullscreen_button_chartcard"]').click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("step-sgd-mlp-digits-s0 (lr)", exact=True)).to_be_visible()
            page.screenshot(path=str(tmp_path / "mlflow_ui_lr.png"))
        except Exception as err:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / "mlflow_ui_failure.png"))
            raise AssertionError(
                f"{err}\nat {page.url}\npage errors: {page_errors}\n"
                f"screenshot: {tmp_path / 'mlflow_ui_failure.png'}\n"
                f"server log:\n{log_tail(server_log)}"
            ) from err
        finally:
            browser.close()
    ui_s = time.monotonic() - started - sweep_s - server_s
    print(f"sweep {sweep_s:.1f}s, server start {server_s:.1f}s, UI {ui_s:.1f}s")

    assert shot.stat().st_size > 10_000
    if os.environ.get("LREXP_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)
