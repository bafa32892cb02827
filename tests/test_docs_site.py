"""The manual, built and read as a person reads it.

The site is built here with ``mkdocs build --strict`` (as ``make docs`` does) into a temporary
folder and served on a free 127.0.0.1 port; headless Chromium (the one ``tests/test_ui.py``
drives) opens it with every request outside that server refused. Every page of the nav must
load, the nav and the search box must work, and the Mermaid diagrams must be drawn as SVG.

Needs Chromium and playwright (``.ci/install-browser.sh``) and npm for Mermaid's bundle
(``scripts/fetch-mermaid.sh``).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mkdocs.config import load_config
from test_ui import CHROMIUM_ARGS, chromium_path, loopback_works

from conftest import ROOT

TIMEOUT_MS = 30_000
#: labels of the data-flow diagram, drawn on the home page
DIAGRAM_LABELS = ("Hydra config", "validation", "Lightning run", "MLflow", "lrexp-compare")
#: Material draws each diagram into a closed shadow root; opened so the test can look inside
OPEN_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attach.call(this, { ...init, mode: "open" });
};
"""


def nav_pages() -> dict[str, str]:
    """Nav title -> Markdown file, from mkdocs.yml (the site's only list of pages)."""
    nav = load_config(str(ROOT / "mkdocs.yml"))["nav"]
    return {title: page for entry in nav for title, page in entry.items()}


def url_path(page: str) -> str:
    """The site path of a Markdown page (``use_directory_urls``)."""
    return "/" if page == "index.md" else f"/{page.removesuffix('.md')}/"


def build_site(site: Path) -> str:
    """``mkdocs build --strict`` into ``site``; returns its log."""
    fetch = subprocess.run(
        [str(ROOT / "scripts" / "fetch-mermaid.sh")], capture_output=True, text=True, timeout=300
    )
    assert fetch.returncode == 0, fetch.stderr
    config = ["-f", str(ROOT / "mkdocs.yml"), "-d", str(site)]
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *config],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return build.stderr


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The manual, built into a temporary folder and served on a free localhost port."""
    if not loopback_works():
        pytest.skip("this machine refuses TCP connections to 127.0.0.1, which the server needs")
    site = tmp_path_factory.mktemp("docs") / "site"
    log = build_site(site)
    assert "WARNING" not in log, log
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through playwright, as in ``tests/test_ui.py``."""
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no Chromium at /usr/bin/chromium (LREXP_CHROMIUM): run .ci/install-browser.sh")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed: run .ci/install-browser.sh"
    )
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, site_url: str) -> Iterator[Any]:
    """A fresh page that may reach only the site's own server; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    blocked: list[str] = []

    def refuse(route: Any) -> None:
        blocked.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(site_url) and not url.startswith("data:"), refuse)
    context.add_init_script(OPEN_SHADOW_ROOTS)
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    yield opened
    context.close()
    assert errors == [], errors
    assert blocked == [], f"the site asked for something outside itself: {blocked}"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def heading(text: str) -> re.Pattern[str]:
    """A heading's text followed by its permalink sign."""
    return re.compile(rf"^{re.escape(text)}\W*$")


def test_every_page_in_the_nav_loads_with_its_heading(page: Any, site_url: str) -> None:
    pages = nav_pages()
    assert sorted(pages.values()) == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    for title, source in pages.items():
        response = page.goto(site_url + url_path(source))
        assert response is not None and response.status == 200, source
        heading = page.locator("article h1")
        expect(heading).to_have_count(1)
        assert heading.inner_text().strip(), source
        expect(page).to_have_title(re.compile(rf"^{re.escape(title)} - lrexp$|^lrexp$"))
        images = page.locator("article img")
        for index in range(images.count()):
            image = images.nth(index)
            image.scroll_into_view_if_needed()
            assert image.evaluate("img => img.complete && img.naturalWidth > 0"), source


def test_nav_and_footer_lead_from_page_to_page(page: Any, site_url: str) -> None:
    page.goto(site_url + "/")
    page.locator("nav.md-nav--primary").get_by_role("link", name="Schedules", exact=True).click()
    expect(page).to_have_url(site_url + "/schedules/")
    expect(page.locator("article h1")).to_have_text(heading("Schedules"))
    page.locator("a.md-footer__link--next").click()
    expect(page).to_have_url(site_url + "/own-parts/")
    expect(page.locator("article h1")).to_have_text(heading("Your own model, data and schedule"))
    # The home page's map links every page of the manual.
    page.goto(site_url + "/")
    map_table = page.locator("article table").filter(has_text="what it covers")
    linked = {link.get_attribute("href") for link in map_table.get_by_role("link").all()}
    expected = {url_path(p).lstrip("/") for p in nav_pages().values() if p != "index.md"}
    assert linked == expected


def test_search_finds_a_word_and_opens_its_page(page: Any, site_url: str) -> None:
    page.goto(site_url + "/")
    box = page.get_by_role("textbox", name="Search")
    box.click()
    expect(box).to_be_focused()
    box.press_sequentially("Friedman", delay=20)  # Material searches on key events
    results = page.locator(".md-search-result__item")
    expect(results.first).to_be_visible()
    expect(page.locator(".md-search-result__meta")).to_contain_text(re.compile(r"\d+ matching"))
    hit = page.locator("a.md-search-result__link[href*='sweeps/']").first
    expect(hit).to_be_visible()
    hit.click()
    expect(page).to_have_url(re.compile(r"/sweeps/"))
    expect(page.locator("article")).to_contain_text("Friedman test")


def test_mermaid_diagram_is_drawn_as_svg(page: Any, site_url: str) -> None:
    page.goto(site_url + "/")
    svg = page.locator("article div.mermaid svg")
    expect(svg).to_be_visible()
    expect(page.locator("article pre.mermaid")).to_have_count(0)  # the source was replaced
    for label in DIAGRAM_LABELS:
        expect(svg.get_by_text(label, exact=False).first).to_be_visible()
    box = svg.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 50


def test_readme_draws_the_home_page_diagram_and_links_every_page() -> None:
    diagram = (ROOT / "docs" / "snippets" / "dataflow.mmd").read_text()
    readme = (ROOT / "README.md").read_text()
    assert f"```mermaid\n{diagram}```" in readme
    missing = [page for page in nav_pages().values() if f"](docs/{page})" not in readme]
    assert missing == [], f"the README's map of the manual lacks {missing}"
    assert len(readme.splitlines()) <= 200


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "src", project / "src")
    page = project / "docs" / "own-parts.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode != 0
    assert "no-such-page.md" in build.stderr
