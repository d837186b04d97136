"""Workspace snapshots: a worktree into artifacts, and back out on 'another worker'."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.executors.context import make_ctx
from tests.helpers import require_binary
from worldpool.errors import ArtifactError
from worldpool.executors.workspace import (
    WorkspaceCache,
    WorkspaceSnapshot,
    git,
    snapshot,
    snapshot_resolver,
)
from worldpool.worker.handlers import TaskContext


def make_repo(path: Path) -> Path:
    require_binary("git", "git")
    path.mkdir()
    git(path, "init", "--quiet", "-b", "main")
    (path / "app.py").write_text("print('v1')\n")
    (path / "README").write_text("readme\n")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "first")
    return path


def transfer(src: TaskContext) -> TaskContext:
    """What the orchestrator does between steps: staged outputs become inputs elsewhere."""
    dest = make_ctx({})
    dest.input_data = {name: staged.data for name, staged in src.staged.items()}
    return dest


def status(repo: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def test_snapshot_and_materialise_elsewhere(tmp_path: Path) -> None:
    # Given a worktree with a commit, an edit, a deletion and untracked files (one binary)
    repo = make_repo(tmp_path / "repo")
    (repo / "app.py").write_text("print('v2')\n")
    (repo / "README").unlink()
    (repo / "new").mkdir()
    (repo / "new" / "mod.py").write_text("x = 1\n")
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    before = status(repo)
    # When it is snapshotted on worker A
    ctx = make_ctx({})
    snap = snapshot(ctx, repo)
    # Then the worktree's own index is untouched
    assert status(repo) == before
    # And on worker B, the materialised copy matches it file for file
    other = transfer(ctx)
    cache = WorkspaceCache(tmp_path / "cache")
    dest = cache.materialize(
        snap, other.read(snap.bundle), other.read(snap.diff), tmp_path / "b" / "ws"
    )
    assert (dest / "app.py").read_text() == "print('v2')\n"
    assert not (dest / "README").exists()
    assert (dest / "new" / "mod.py").read_text() == "x = 1\n"
    assert (dest / "blob.bin").read_bytes() == bytes(range(256))
    assert git(dest, "rev-parse", "HEAD").decode().strip() == snap.commit


def test_cache_is_reused_and_advertised(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ctx = make_ctx({})
    snap = snapshot(ctx, repo)
    bundle = ctx.staged[snap.bundle].data
    diff = ctx.staged[snap.diff].data
    cache = WorkspaceCache(tmp_path / "cache")
    assert cache.keys() == [] and not cache.has(snap.commit)
    first = cache.checkout(snap.commit, bundle)
    marker = first / ".git" / "reused"
    marker.write_text("same clone")
    assert cache.checkout(snap.commit, bundle) == first and marker.exists()
    assert cache.keys() == [snap.key, snap.bundle_digest]
    # two steps get two private copies from the one cached clone
    a = cache.materialize(snap, bundle, diff, tmp_path / "a")
    b = cache.materialize(snap, bundle, diff, tmp_path / "b")
    (a / "app.py").write_text("changed in a\n")
    assert (b / "app.py").read_text() == "print('v1')\n"
    assert (first / "app.py").read_text() == "print('v1')\n"


def test_tampered_artifacts_are_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ctx = make_ctx({})
    snap = snapshot(ctx, repo)
    cache = WorkspaceCache(tmp_path / "cache")
    with pytest.raises(ArtifactError):
        cache.materialize(snap, ctx.staged[snap.bundle].data, b"tampered", tmp_path / "x")


def test_snapshot_round_trips_through_json(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    snap = snapshot(make_ctx({}), repo)
    again = WorkspaceSnapshot.model_validate_json(snap.model_dump_json())
    assert again == snap and again.key == f"workspace:{snap.commit}"


def test_materialising_a_snapshot_advertises_the_clone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ctx = make_ctx({})
    snap = snapshot(ctx, repo)
    step = transfer(ctx)
    step.payload = {"snapshot": snap.model_dump()}

    snapshot_resolver(WorkspaceCache(tmp_path / "cache"))(step, tmp_path / "ws")

    assert step.holds == [snap.key, snap.bundle_digest], "what cache.keys() lists at start"
