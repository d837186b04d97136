"""``worldpool worker --sandbox``: the shell sandbox is named from the provider registry;
an unknown name is a usage error that lists the known ones; the named provider is the one
the claims check judges."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from worldpool.cli.app import Exit, app
from worldpool.cli.worker import WorkerOptions, collect_handlers, sandbox_provider_name

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


def printed_handlers(out: str) -> set[str]:
    """The handlers of the profile ``--print-profile`` printed (the JSON before warnings)."""
    start, end = out.index("{"), out.rindex("}") + 1
    return set(orjson.loads(out[start:end])["handlers"])


def test_unknown_sandbox_is_a_usage_error_listing_the_known_ones() -> None:
    code, out = invoke(
        "worker", "--region", "on-prem", "--sandbox", "bubblewarp", "--print-profile"
    )
    assert code == Exit.USAGE, out
    assert "unknown sandbox provider 'bubblewarp'" in out and "Did you mean 'bubblewrap'" in out
    assert "bubblewrap, local, locale2b" in out


def test_unknown_sandbox_is_reported_without_builtins_too() -> None:
    code, out = invoke(
        "worker",
        "--region",
        "on-prem",
        "--no-builtin",
        "--handlers",
        "worldpool.demo.handlers:HANDLERS",
        "--sandbox",
        "nope",
        "--print-profile",
    )
    assert code == Exit.USAGE and "unknown sandbox provider 'nope'" in out


def test_local_sandbox_runs_the_shell_executors_and_is_judged_by_the_claims_check() -> None:
    code, out = invoke(
        "worker",
        "--region",
        "on-prem",
        "--sandbox",
        "local",
        "--capabilities",
        "shell_operations",
        "--print-profile",
    )
    assert code == Exit.OK, out
    assert {"shell", "run_tests"} <= printed_handlers(out)
    assert "the local provider has no isolation" in out


def test_default_sandbox_is_as_before() -> None:
    assert sandbox_provider_name(WorkerOptions(unsafe_local_shell=True)) == "local"
    expected = "bubblewrap" if shutil.which("bwrap") else None
    assert sandbox_provider_name(WorkerOptions()) == expected
    assert sandbox_provider_name(WorkerOptions(sandbox="locale2b")) == "locale2b"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_named_provider_backs_the_shell_handlers(tmp_path: Path) -> None:
    table = collect_handlers(WorkerOptions(sandbox="bubblewrap", workspace_cache=tmp_path))
    assert "shell" in table.names() and "run_tests" in table.names()
    bare = collect_handlers(
        WorkerOptions(builtin=False, handler_specs=["worldpool.demo.handlers:HANDLERS"])
    )
    assert "shell" not in bare.names()


def test_the_workers_sandbox_policy_flags_cap_a_shell_task(tmp_path: Path) -> None:
    # `worldpool worker --sandbox-max-memory-mb 256`: the built-in shell handler's sandbox
    # runs a task asking 8192 MB with 256 MB, and its result says so
    from tests.executors.context import make_ctx
    from tests.helpers import require_binary

    require_binary("bwrap", "bubblewrap")
    options = WorkerOptions(
        sandbox="bubblewrap", workspace_cache=tmp_path, sandbox_limits={"memory_mb": 256}
    )
    shell = collect_handlers(options).get("shell")
    assert shell is not None
    ctx = make_ctx(
        {
            "command": ["python3", "-c", "b = bytearray(1 << 30)"],
            "limits": {"memory_mb": 8192},
            "timeout_s": 30,
        }
    )
    result = shell(ctx)
    assert result["limit_hit"] == "memory", result
    assert result["capped"] == ["memory_mb: the task asked 8192, this worker's policy allows 256"]


def test_the_sandbox_policy_flags_are_read_from_the_command_line() -> None:
    help_text = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "200"}).output
    for flag in (
        "--sandbox-max-memory-mb",
        "--sandbox-max-procs",
        "--sandbox-max-open-files",
        "--sandbox-max-workspace-mb",
    ):
        assert flag in help_text
    refused = CliRunner().invoke(app, ["worker", "--sandbox-max-memory-mb", "4"])
    assert refused.exit_code == 2  # under the usable minimum: a usage error
