"""Code executors: apply_patch, check_syntax and run_tests, chained through snapshots."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.executors.context import make_ctx
from tests.executors.test_workspace import make_repo, transfer
from tests.helpers import require_binary
from worldpool.errors import HandlerError
from worldpool.executors import builtin_handlers
from worldpool.executors.code import parse_pytest_summary, syntax_errors
from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider
from worldpool.executors.workspace import WorkspaceCache, snapshot
from worldpool.worker.handlers import HandlerTable, TaskContext

PATCH = """\
--- a/app.py
+++ b/app.py
@@ -1 +1,2 @@
-print('v1')
+def add(a, b):
+    return a + b
--- /dev/null
+++ b/test_app.py
@@ -0,0 +1,7 @@
+from app import add
+
+def test_add():
+    assert add(1, 2) == 3
+
+def test_wrong():
+    assert add(1, 1) == 3
"""


@pytest.fixture
def table(tmp_path: Path) -> HandlerTable:
    require_binary("bwrap", "bubblewrap")
    provider = BubblewrapProvider(ro_paths=[Path(sys.prefix), Path(sys.base_prefix)])
    return builtin_handlers(
        shell_provider=provider, workspace_cache=WorkspaceCache(tmp_path / "cache")
    )


def call(table: HandlerTable, name: str, ctx: TaskContext) -> Any:
    handler = table.get(name)
    assert handler is not None
    return handler(ctx)


def snapshot_ctx(repo: Path, payload: dict[str, Any]) -> TaskContext:
    origin = make_ctx({})
    snap = snapshot(origin, repo)
    ctx = transfer(origin)
    ctx.payload = {**payload, "snapshot": snap.model_dump(mode="json")}
    return ctx


def test_patch_check_and_test_across_workers(table: HandlerTable, tmp_path: Path) -> None:
    # Given a repo snapshotted on one worker
    repo = make_repo(tmp_path / "repo")
    # When another worker applies a patch to it
    patched = snapshot_ctx(repo, {"patch": PATCH})
    result = call(table, "apply_patch", patched)
    assert result["changed"] == ["app.py", "test_app.py"]
    assert result["sandbox"] == "bubblewrap"  # git ran inside the sandbox, not on the host
    # Then the new snapshot carries the change to the next steps
    nxt = transfer(patched)
    nxt.payload = {"snapshot": result["snapshot"]}
    syntax = call(table, "check_syntax", nxt)
    assert syntax == {"ok": True, "checked": ["app.py", "test_app.py"], "errors": []}
    nxt.payload = {
        "snapshot": result["snapshot"],
        "timeout_s": 60,
        "env": {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        "command": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
    }
    tests = call(table, "run_tests", nxt)
    assert (tests["passed"], tests["failed"]) == (1, 1), tests["stdout"] + tests["stderr"]
    assert tests["ok"] is False and tests["provider"] == "bubblewrap"


def test_patch_that_does_not_apply_fails_clearly(table: HandlerTable, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    bad = PATCH.replace("-print('v1')", "-print('something else')")
    with pytest.raises(HandlerError, match=r"patch does not apply: .*app\.py") as info:
        call(table, "apply_patch", snapshot_ctx(repo, {"patch": bad}))
    assert not info.value.retryable


def test_check_syntax_reports_file_line_col(table: HandlerTable, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "broken.py").write_text("def f(:\n    return 1\n")
    (repo / "fine.py").write_text("x = 1\n")
    result = call(table, "check_syntax", snapshot_ctx(repo, {}))
    assert result["ok"] is False
    assert result["checked"] == ["broken.py", "fine.py"]
    assert result["errors"][0].startswith("broken.py:1:")
    assert all(e.startswith("broken.py:") for e in result["errors"])


def test_syntax_errors_from_jedi_and_ast() -> None:
    errors = syntax_errors("x = (1,\ny = 2\n", "m.py")
    assert errors and errors[0].startswith("m.py:")
    assert syntax_errors("x = 1\n", "ok.py") == []


def test_check_syntax_on_inline_files(table: HandlerTable) -> None:
    ctx = make_ctx({"files": {"pkg/a.py": "a"}, "paths": ["pkg/a.py"]})
    ctx.input_data["a"] = b"print('unterminated)\n"
    result = call(table, "check_syntax", ctx)
    assert not result["ok"] and result["errors"][0].startswith("pkg/a.py:1:")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "===== 3 passed, 1 failed, 2 skipped in 0.12s =====",
            {"passed": 3, "failed": 1, "errors": 0, "skipped": 2},
        ),
        ("1 failed, 1 passed in 0.03s", {"passed": 1, "failed": 1, "errors": 0, "skipped": 0}),
        (
            "=== 2 passed, 1 error in 1.00s ===",
            {"passed": 2, "failed": 0, "errors": 1, "skipped": 0},
        ),
        ("no tests ran in 0.01s", {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}),
        ("", {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}),
    ],
)
def test_parse_pytest_summary(line: str, expected: dict[str, int]) -> None:
    assert parse_pytest_summary(f"collected\n.F\n{line}\n") == expected


def test_builtin_table_without_a_sandbox_has_no_shell() -> None:
    table = builtin_handlers()
    assert "apply_patch" in table and "check_syntax" in table
    assert "shell" not in table and "run_tests" not in table
