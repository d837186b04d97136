"""The dashboard fits and follows, in Debian's Chromium at a phone, a laptop and a wide
screen: the DAG fits its panel and no text leaves its box, the routing reasons are not
clipped, ETA and elapsed tick between events, map labels do not overlap, the run list
searches and pages, the event history replays, and the Submit example is the demo's own.
Set ``WORLDPOOL_SCREENSHOTS_DIR`` to keep the screenshots (docs/img/ was made that way).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.support import ADMIN, ThreadedServer
from tests.e2e.test_dashboard import CHROMIUM_ARGS, shoot
from tests.helpers import require_binary
from worldpool.demo.scenario import demo_workflow


def nap(s: float) -> dict[str, Any]:
    return {"handler": "nap", "payload": {"s": s}}


# The demo's shape (seven steps, two parallel verifications) on this test pool's handlers.
DEMO_SHAPE = {
    "name": "fix-auth-bug",
    "steps": [
        {"name": "planning", "task": nap(0.6)},
        {"name": "localization", "after": ["planning"], "task": nap(0.6)},
        {"name": "understanding", "after": ["localization"], "task": nap(0.6)},
        {"name": "fix", "after": ["understanding"], "task": nap(0.6)},
        {"name": "verify_tests", "after": ["fix"], "task": nap(0.6)},
        {
            "name": "verify_browser",
            "after": ["fix"],
            "task": {"handler": "shot", "payload": {}, "requirements": {"gpu": True}},
        },
        {"name": "review", "after": ["verify_tests", "verify_browser"], "task": nap(0.6)},
    ],
}


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_binary("chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(sse_ping_s=1.0) as s:
        yield s


def submit(server: ThreadedServer, spec: dict[str, Any]) -> str:
    r = httpx.post(
        f"{server.url}/api/v1/workflows",
        json=spec,
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert r.status_code < 300, r.text
    return str(r.json()["spec"]["id"])


def open_page(browser: Any, server: ThreadedServer, width: int) -> tuple[Any, list[str]]:
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    ctx.add_init_script(f"localStorage.setItem('wp-token', '{ADMIN}')")
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


# Every node box inside the DAG panel's visible area; every text inside its own box.
FITS = """() => {
  const panel = document.querySelector('#dag-panel').getBoundingClientRect();
  const bad = [];
  for (const g of document.querySelectorAll('#dag g.node')) {
    const box = g.querySelector('rect').getBoundingClientRect();
    if (box.left < panel.left - 1 || box.right > panel.right + 1) bad.push('box ' + g.dataset.step);
    for (const t of g.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) bad.push('text ' + t.textContent);
    }
  }
  return bad;
}"""

LABELS_OVERLAP = """() => {
  const rs = [...document.querySelectorAll('.map-label')].map((t) => t.getBoundingClientRect());
  let n = 0;
  for (let i = 0; i < rs.length; i++) for (let j = i + 1; j < rs.length; j++) {
    const a = rs[i], b = rs[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++;
  }
  return [rs.length, n];
}"""


@pytest.mark.parametrize(("width", "name"), [(390, "phone"), (1280, "laptop"), (1920, "wide")])
def test_the_workflow_view_fits_and_follows(
    browser: Any, server: ThreadedServer, tmp_path: Any, width: int, name: str
) -> None:
    page, errors = open_page(browser, server, width)
    wf = submit(server, DEMO_SHAPE)
    page.goto(f"{server.url}/#/wf/{wf}")
    page.wait_for_selector("#dag g.node[data-step='review']")
    page.wait_for_selector("#live.on")
    # ETA is never a made-up zero: unknown until a step has finished, then seconds left
    assert page.locator("#eta").inner_text() != "0 s"
    page.wait_for_selector("#steps tr[data-step='localization'] .s-running")
    first = page.locator("#elapsed").inner_text()
    page.wait_for_function(f"document.querySelector('#elapsed').textContent !== '{first}'")
    eta = page.locator("#eta").inner_text()
    assert eta == "unknown" or (eta.endswith(" s") and int(eta.split()[0]) > 0)
    assert page.evaluate(FITS) == []
    # ... and stays legible: boxes are not shrunk below 70% of their natural 170 px
    node_width = page.evaluate(
        "document.querySelector('#dag g.node rect').getBoundingClientRect().width"
    )
    assert node_width >= 120
    labels, overlaps = page.evaluate(LABELS_OVERLAP)
    assert labels == 3 and overlaps == 0
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, tmp_path, f"dashboard-{name}-running.png")

    page.wait_for_selector("#wf-status .s-succeeded", timeout=40_000)
    assert page.locator("#eta").inner_text() == "done"
    assert page.evaluate(FITS) == []
    # Nothing widens the page past the screen (wide tables scroll in place)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # The routing reasons are whole: no element clips its text
    page.click("#steps tr[data-step='verify_browser']")
    page.wait_for_selector("#routing-table .excluded")
    clipped = page.evaluate(
        "[...document.querySelectorAll('#routing-table .excluded')]"
        ".filter((e) => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().width < 120"
        " || e.getBoundingClientRect().right"
        " > document.querySelector('#routing').getBoundingClientRect().right)"
        ".length"
    )
    assert clipped == 0
    assert "excluded because" in page.locator("#routing-table").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, tmp_path, f"dashboard-{name}.png")
    assert errors == []


def test_history_runs_and_submit_example(
    browser: Any, server: ThreadedServer, tmp_path: Any
) -> None:
    page, errors = open_page(browser, server, 1280)
    wf = submit(server, DEMO_SHAPE)
    page.goto(f"{server.url}/#/history/{wf}")
    page.wait_for_selector("#history tr[data-kind='workflow.succeeded']", timeout=40_000)
    kinds = page.eval_on_selector_all("#history tbody tr", "rs => rs.map(r => r.dataset.kind)")
    assert kinds[0] == "workflow.submitted" and kinds.count("task.succeeded") == 7

    other = submit(server, {**DEMO_SHAPE, "name": "second-run"})
    page.goto(f"{server.url}/#/runs?q=second")
    page.wait_for_selector(f"#workflows tr[data-id='{other}']")
    assert page.locator(f"#workflows tr[data-id='{wf}']").count() == 0
    page.fill("#filters input[name=q]", "")
    page.click("#filters button")
    page.wait_for_selector(f"#workflows tr[data-id='{wf}']")

    # The Submit example is the demo's own workflow; on this pool it says what is missing
    page.goto(f"{server.url}/#/submit")
    example = page.evaluate("window.DEMO_EXAMPLE")
    demo = demo_workflow("Tokyo")
    assert [(s["name"], s["task"]["handler"], s.get("after", [])) for s in example["steps"]] == [
        (s.name, s.task.handler, s.after) for s in demo.steps
    ]
    page.wait_for_function("document.querySelector('#fit')?.textContent.length > 0")
    assert page.locator("#fit.err").count() == 1, page.locator("#fit").inner_text()
    assert "plan" in page.locator("#fit").inner_text()
    assert errors == []


def test_co_located_workers_get_separate_dots_and_labels(
    browser: Any, server: ThreadedServer
) -> None:
    page, errors = open_page(browser, server, 1280)
    page.goto(f"{server.url}/#/map")
    page.wait_for_selector("circle.dot")
    # Eight workers in Tokyo and three in Osaka, as a crowded seed pool has them
    placed = page.evaluate(
        """() => {
      const ws = [...Array(8)].map((_, i) => ({ id: `tokyo-gpu-${i}`, lat: 35.68, lon: 139.69 }))
        .concat([...Array(3)].map((_, i) => ({ id: `osaka-cpu-${i}`, lat: 34.69, lon: 135.5 })));
      return placeDots(ws).map((d) => ({ x: d.x, y: d.y, l: d.label }));
    }"""
    )
    assert len(placed) == 11
    dots = {(round(d["x"], 1), round(d["y"], 1)) for d in placed}
    assert len(dots) == 11  # no two dots on the same spot
    boxes = [d["l"] for d in placed]
    overlaps = [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes)
        if i < j
        and a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    ]
    assert overlaps == []
    assert errors == []
