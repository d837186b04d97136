"""End to end: the bundled dashboard in Debian's Chromium, driven by Playwright.

Starts a real orchestrator with in-process workers and the API on loopback, submits the
demo-like workflow from the dashboard's own form, watches steps change state live (no
reload), opens a step's routing table, and saves screenshots. Set
``WORLDPOOL_SCREENSHOTS_DIR`` to keep them (docs/img/ was made that way).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.support import ADMIN, ThreadedServer
from tests.e2e.screenshots import keep
from tests.helpers import require_binary

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


TEST_POOL_SPEC = {
    "name": "demo",
    "steps": [
        {"name": "plan", "task": {"handler": "nap", "payload": {"s": 1}}},
        {"name": "browse", "after": ["plan"], "task": {"handler": "shot", "payload": {}}},
        {"name": "infer", "after": ["plan"], "task": {"handler": "nap", "payload": {"s": 1.5}}},
        {
            "name": "report",
            "after": ["browse", "infer"],
            "task": {"handler": "nap", "payload": {"s": 0.5}},
        },
    ],
}


@pytest.fixture
def page() -> Iterator[Any]:
    chromium = require_binary("chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = context.new_page()
            pg.set_default_timeout(20_000)
            yield pg
        finally:
            browser.close()


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(sse_ping_s=1.0) as s:
        yield s


def shoot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    keep(path, name)  # into $WORLDPOOL_SCREENSHOTS_DIR (docs/img), compressed
    assert path.stat().st_size > 10_000
    return path


def test_dashboard_follows_a_workflow_live(
    page: Any, server: ThreadedServer, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/#/submit")
    page.fill("#token", ADMIN)
    page.press("#token", "Tab")  # a change event, as a person typing it would cause
    page.wait_for_selector("#spec")
    page.evaluate("window.__same_document = true")  # gone if the page ever reloads

    # When the demo-like workflow (this test pool's handlers) is submitted from the form
    page.fill("#spec", json.dumps(TEST_POOL_SPEC))
    page.click("#go")
    page.wait_for_selector("#dag")
    assert "#/wf/" in page.url
    page.wait_for_selector("#live.on")

    # Then its steps change state live, without a reload
    page.wait_for_selector('#steps tr[data-step="plan"] .s-running')
    page.wait_for_selector('#steps tr[data-step="infer"] .s-running')
    shoot(page, tmp_path, "dashboard-workflow-running.png")
    page.wait_for_selector('#steps tr[data-step="report"] .s-succeeded', timeout=30_000)
    page.wait_for_selector("#wf-status .s-succeeded")
    assert page.evaluate("window.__same_document") is True
    assert page.locator('#steps tr[data-step="plan"] td').nth(2).inner_text() != ""
    assert page.locator("#eta").inner_text() == "done"

    # And a step's routing table says why its worker won
    page.click('#steps tr[data-step="browse"]')
    table = page.wait_for_selector("#routing-table")
    assert table is not None
    winner = page.locator("#routing-table td.win").inner_text()
    assert winner in {"tokyo-gpu-1", "virginia-cpu-1", "frankfurt-browser-1"}
    page.wait_for_selector("#detail img.preview[src^='blob:']")  # the screenshot artifact
    shoot(page, tmp_path, "dashboard-step-routing.png")

    page.goto(server.url + "/#/workers")
    page.wait_for_selector("table.workers tr[data-worker='tokyo-gpu-1']")
    shoot(page, tmp_path, "dashboard-workers.png")
    page.goto(server.url + "/#/map")
    page.wait_for_selector("circle.dot[data-worker='frankfurt-browser-1']")
    shoot(page, tmp_path, "dashboard-map.png")
    page.goto(server.url + "/#/")
    page.wait_for_selector("#workflows td a")
    assert errors == []
