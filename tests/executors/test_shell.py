"""The ``shell`` executor: payloads, workspaces, outputs as artifacts, unsafe paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.executors.context import make_ctx
from tests.helpers import require_binary
from worldpool.errors import ArtifactError, HandlerError, ValidationError
from worldpool.executors.sandbox.base import LimitHit, Limits, ShellRequest, check_relative
from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider
from worldpool.executors.sandbox.local import LocalProvider
from worldpool.executors.sandbox.runner import CappedStream
from worldpool.executors.shell import collect_outputs, run_command, shell_handler
from worldpool.worker.handlers import digest_of


@pytest.fixture
def bwrap() -> BubblewrapProvider:
    require_binary("bwrap", "bubblewrap")
    return BubblewrapProvider()


def test_shell_handler_materialises_files_and_stores_outputs(bwrap: BubblewrapProvider) -> None:
    # Given an input artifact placed in the workspace and a declared output
    ctx = make_ctx(
        {
            "command": "mkdir -p out && tr a-z A-Z < src/in.txt > out/up.txt && echo done",
            "files": {"src/in.txt": "in.txt"},
            "outputs": ["out/up.txt"],
            "timeout_s": 30,
        }
    )
    ctx.input_data["in.txt"] = b"hello sandbox\n"
    # When the handler runs
    result = shell_handler(bwrap)(ctx)
    # Then the output is an artifact and the result names it
    assert result["exit_code"] == 0, result["stderr"]
    assert result["stdout"] == "done\n"
    staged = ctx.staged["out__up.txt"]
    assert staged.data == b"HELLO SANDBOX\n"
    assert result["outputs"] == {"out/up.txt": digest_of(b"HELLO SANDBOX\n")}
    assert ctx.meta["sandbox_id"] == result["sandbox_id"]
    assert result["sandbox_id"].startswith("bwrap-")
    assert result["provider"] == "bubblewrap"


def test_argv_and_env_reach_the_command(bwrap: BubblewrapProvider, tmp_path: Path) -> None:
    request = ShellRequest(
        command=["/bin/sh", "-c", "echo $GREETING; env | sort"],
        workspace=tmp_path,
        env={"GREETING": "hi there"},
        timeout_s=20,
    )
    result = run_command(request, bwrap)
    assert result.stdout.splitlines()[0] == "hi there"
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()[1:] if "=" in line}
    assert "GREETING" in names and "PATH" in names
    assert not names & {k for k in os.environ if k.startswith(("WORLDPOOL", "REDIS", "AWS"))}


def test_check_turns_a_failing_exit_into_an_error(bwrap: BubblewrapProvider) -> None:
    ctx = make_ctx({"command": "echo boom >&2; exit 3", "check": True, "timeout_s": 20})
    with pytest.raises(HandlerError, match="exit code 3"):
        shell_handler(bwrap)(ctx)


def test_network_asked_but_not_allowed_is_refused(bwrap: BubblewrapProvider) -> None:
    ctx = make_ctx({"command": "true", "network": True})
    with pytest.raises(HandlerError, match="network"):
        shell_handler(bwrap)(ctx)


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b", ""])
def test_output_paths_that_leave_the_workspace_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        check_relative(bad)


def test_symlinked_output_escaping_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "secret").write_text("s3cret")
    (ws / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ArtifactError, match="outside the workspace"):
        collect_outputs(ws, ["link"])


def test_missing_outputs_are_listed_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    found, missing = collect_outputs(tmp_path, ["a.txt", "b.txt"])
    assert found == {"a.txt": b"a"} and missing == ["b.txt"]


def test_file_input_with_traversal_is_refused(bwrap: BubblewrapProvider) -> None:
    ctx = make_ctx({"command": "true", "files": {"../../x": "in"}})
    ctx.input_data["in"] = b"x"
    with pytest.raises(ValidationError):
        shell_handler(bwrap)(ctx)


def test_named_workspace_must_be_under_the_root(bwrap: BubblewrapProvider, tmp_path: Path) -> None:
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "f.txt").write_text("kept")
    handler = shell_handler(bwrap, workspace_root=tmp_path)
    result = handler(make_ctx({"command": "cat f.txt", "workspace": "checkout"}))
    assert result["stdout"] == "kept"
    with pytest.raises(ValidationError):
        handler(make_ctx({"command": "true", "workspace": "../.."}))
    with pytest.raises(HandlerError, match="no workspace root"):
        shell_handler(bwrap)(make_ctx({"command": "true", "workspace": "checkout"}))


def test_bad_payload_is_a_validation_error(bwrap: BubblewrapProvider) -> None:
    with pytest.raises(ValidationError, match="bad shell payload"):
        shell_handler(bwrap)(make_ctx({"command": ""}))


def test_local_provider_refuses_unless_allowed(tmp_path: Path) -> None:
    request = ShellRequest(command="echo hi", workspace=tmp_path)
    with pytest.raises(HandlerError, match="--unsafe-local-shell"):
        LocalProvider(allow=False).run(request)
    result = LocalProvider(allow=True).run(request)
    assert result.exit_code == 0 and result.stdout == "hi\n"
    assert result.provider == "local"


def test_local_provider_still_enforces_the_wall_clock(tmp_path: Path) -> None:
    result = LocalProvider(allow=True).run(
        ShellRequest(command="sleep 30", workspace=tmp_path, timeout_s=0.5)
    )
    assert result.limit_hit is LimitHit.TIMEOUT


def test_capped_stream_keeps_head_and_tail() -> None:
    stream = CappedStream(10)
    for chunk in (b"0123", b"456789", b"abcdef"):
        stream.feed(chunk)
    assert stream.truncated and stream.total == 16
    text = stream.text()
    assert text.startswith("01234") and text.endswith("bcdef")
    assert "[6 bytes truncated]" in text
    short = CappedStream(10)
    short.feed(b"0123456789")
    assert not short.truncated and short.text() == "0123456789"


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Limits(memory_mb=0)
    with pytest.raises(ValueError):
        ShellRequest(command="true", workspace=Path("/tmp"), env={"BAD NAME": "x"})
