"""The dashboard's run list, retry and live step logs against /api/v1/runs,
/api/v1/{tasks,workflows}/{id}/retry and /api/v1/tasks/{id}/logs (the client branch adds
those endpoints; the coordinator runs this file once it is merged), in Debian's Chromium.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.api.support import ThreadedServer
from tests.e2e.test_dashboard_fit import ADMIN, DEMO_SHAPE, browser, open_page, server, submit

__all__ = ["browser", "server"]  # the fixtures, re-used

FAILING = {
    "name": "fails-once",
    "steps": [
        {"name": "only", "task": {"handler": "boom", "payload": {}, "retry": {"max_retries": 0}}}
    ],
}


def wait_until_ended(server: ThreadedServer, workflow_id: str) -> None:
    for _ in range(300):  # bounded: 30 s
        doc = httpx.get(
            f"{server.url}/api/v1/workflows/{workflow_id}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        ).json()
        if doc["status"] in ("succeeded", "failed", "cancelled"):
            return
        time.sleep(0.1)
    raise AssertionError(f"workflow {workflow_id} did not end in 30 s")


def test_run_list_uses_the_runs_endpoint_with_filters_and_paging(
    browser: Any, server: ThreadedServer
) -> None:
    page, errors = open_page(browser, server, 1280)
    wf = submit(server, DEMO_SHAPE)
    wait_until_ended(server, wf)  # every step's task exists once the workflow has ended
    page.goto(f"{server.url}/#/runs?kind=task&q={wf}")
    page.wait_for_selector("#workflows tr[data-kind='task']")
    assert page.locator("#runs-fallback").count() == 0  # the server answered /runs
    kinds = page.eval_on_selector_all("#workflows tbody tr", "rs => rs.map(r => r.dataset.kind)")
    assert set(kinds) == {"task"} and len(kinds) == 7
    page.goto(f"{server.url}/#/runs?kind=task&handler=shot&q={wf}")
    page.wait_for_function("document.querySelectorAll('#workflows tbody tr').length === 1")
    assert "shot" in page.locator("#workflows tbody").inner_text()
    assert errors == []


def test_retry_and_logs_from_the_page(browser: Any, server: ThreadedServer) -> None:
    page, errors = open_page(browser, server, 1280)
    wf = submit(server, FAILING)
    page.goto(f"{server.url}/#/wf/{wf}")
    page.wait_for_selector("#wf-status .s-failed", timeout=30_000)
    page.click("#steps tr[data-step='only']")
    page.wait_for_selector("#log-state:has-text('complete')")
    page.click("#retry")
    page.wait_for_selector("#toast:has-text('retrying only')")
    page.wait_for_selector("#wf-status .s-in_progress, #wf-status .s-failed")
    assert errors == []
