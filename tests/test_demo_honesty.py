"""No green step that did not run: the demo's handlers fail naming what is missing, the
scenario refuses workers that cannot back their handlers and says so up front, and the
review never approves unverified work."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import require_binary
from worldpool.demo import handlers, workspace
from worldpool.demo.handlers import review, unverified
from worldpool.demo.scenario import demo_pool, demo_workflow, preflight
from worldpool.demo.workspace import BUBBLEWRAP, CHROMIUM
from worldpool.errors import HandlerError
from worldpool.models import WorkerProfile
from worldpool.testing import make_worker
from worldpool.worker.handlers import TaskContext


def _ctx(upstream: dict[str, Any] | None = None, step: str = "s") -> TaskContext:
    worker: WorkerProfile = make_worker("w")
    return TaskContext(
        task_id="t",
        attempt=1,
        handler="h",
        payload={},
        worker=worker,
        step=step,
        upstream=dict(upstream or {}),
        cancelled=threading.Event(),
    )


VERIFIED = {
    "verify_tests": {"exit_code": 0, "passed": 12, "failed": 0, "sandbox": "bubblewrap"},
    "verify_browser": {"ran": True, "logged_in": True, "title": "Welcome"},
}


def test_review_approves_only_verified_work() -> None:
    assert unverified(VERIFIED) == []
    assert review(_ctx(VERIFIED))["approved"] is True
    cases = {
        "the browser check did not run": {"verify_tests": VERIFIED["verify_tests"]},
        "the tests did not run": {"verify_browser": VERIFIED["verify_browser"]},
        "the tests did not run in the sandbox": {
            **VERIFIED,
            "verify_tests": {**VERIFIED["verify_tests"], "sandbox": "none"},
        },
        "the tests did not pass": {
            **VERIFIED,
            "verify_tests": {**VERIFIED["verify_tests"], "failed": 1, "exit_code": 1},
        },
        "the browser check did not run ": {
            **VERIFIED,
            "verify_browser": {"ran": False, "reason": "missing chromium"},
        },
    }
    for gap, upstream in cases.items():
        result = review(_ctx(upstream))
        assert result["approved"] is False, gap
        assert any(g.startswith(gap.strip()) for g in result["unverified"]), result


def test_tests_never_run_unsandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name)
    )
    assert BUBBLEWRAP in workspace.missing_for("run_tests")
    with pytest.raises(HandlerError, match="bubblewrap") as caught:
        handlers.run_tests(_ctx(step="verify_tests"))
    assert caught.value.retryable  # another worker may have it


def test_browser_check_without_chromium_fails_instead_of_succeeding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worldpool.executors.browser import BrowserConfig

    monkeypatch.setattr(BrowserConfig, "missing_tools", lambda self: ["/usr/bin/chromium"])
    assert CHROMIUM in workspace.missing_for("browser_check")
    with pytest.raises(HandlerError, match="chromium") as caught:
        asyncio.run(handlers.browser_check(_ctx(step="verify_browser")))
    assert caught.value.retryable


def test_preflight_refuses_workers_says_how_to_install_and_leaves_steps_out() -> None:
    def no_chromium(handler: str) -> list[str]:
        return [CHROMIUM] if handler == "browser_check" else []

    checked = preflight(demo_pool(), no_chromium)
    browsers = {w.id for w in demo_pool() if w.labels["kind"] == "browser"}
    assert set(checked.refused) == browsers
    assert all(m == [CHROMIUM] for m in checked.refused.values())
    assert {w.id for w in checked.workers}.isdisjoint(browsers)
    assert list(checked.left_out) == ["verify_browser"]
    lines = "\n".join(checked.lines())
    assert "not starting browser-aws-useast-03: missing chromium" in lines
    assert "sudo apt-get install chromium" in lines
    assert "cannot run step verify_browser" in lines
    spec = demo_workflow("london", checked.left_out)
    steps = {s.name: s for s in spec.steps}
    assert "verify_browser" not in steps and steps["review"].after == ["verify_tests"]


def test_preflight_without_a_sandbox_leaves_out_what_depends_on_it() -> None:
    def no_bwrap(handler: str) -> list[str]:
        return [BUBBLEWRAP] if handler == "run_tests" else []

    checked = preflight(demo_pool(), no_bwrap)
    assert set(checked.left_out) == {"localization", "understanding", "fix", "verify_tests"} | {
        "verify_browser"
    }
    assert "review" not in checked.left_out  # it runs, and reports the work unverified
    assert "needs" in checked.left_out["understanding"]


def test_this_machine_runs_every_step() -> None:
    # The CI machine has every tool (scripts/system-deps.sh): nothing may be left out there.
    for tool, package in (("bwrap", "bubblewrap"), ("chromium", "chromium"), ("git", "git")):
        require_binary(tool, package)  # skips on a user's machine, fails in CI
    checked = preflight()
    assert checked.refused == {} and checked.left_out == {}


def test_the_demos_patch_is_applied_inside_the_sandbox(tmp_path: Path) -> None:
    require_binary("bwrap", "bubblewrap")
    require_binary("git", "git")
    workspace.copy_tree(workspace.PROJECT, tmp_path)
    login = tmp_path / "auth" / "login.py"
    assert "self._users.get(email)" in login.read_text()
    sandbox_id = workspace.apply_patch(tmp_path, handlers.PATCH.encode())
    assert sandbox_id.startswith("bwrap-")  # the id of the bubblewrap run that applied it
    assert "self._users.get(email.strip().lower())" in login.read_text()
    assert not (tmp_path / workspace.PATCH_FILE).exists()
    # applied once: a second time it no longer applies, and git's reason is given
    with pytest.raises(HandlerError, match="patch does not apply") as caught:
        workspace.apply_patch(tmp_path, handlers.PATCH.encode())
    assert not caught.value.retryable
    assert not (tmp_path / workspace.PATCH_FILE).exists()


def test_patches_are_never_applied_on_the_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name)
    )
    assert BUBBLEWRAP in workspace.missing_for("fix")
    workspace.copy_tree(workspace.PROJECT, tmp_path)
    before = (tmp_path / "auth" / "login.py").read_text()
    with pytest.raises(HandlerError, match="bubblewrap") as caught:
        workspace.apply_patch(tmp_path, handlers.PATCH.encode())
    assert caught.value.retryable  # another worker may have it
    assert (tmp_path / "auth" / "login.py").read_text() == before
