"""Shared git workspaces: snapshot a worktree into artifacts, materialise it elsewhere.

A snapshot is two artifacts: a git bundle of HEAD (the history, identical for every
snapshot of the same commit, so content addressing stores it once) and a binary diff of
everything not committed, untracked files included (made with a throw-away index, so the
worktree's own index is untouched). :class:`WorkspaceSnapshot` names them.

A worker materialises a snapshot from a :class:`WorkspaceCache`: one clone per commit
under the cache directory, reused by every later step on the same commit; each step gets
its own copy with the diff applied. ``cache.keys()`` lists what is cached (the bundle
digests and ``workspace:<commit>``) for ``WorkerState.cached``, which the data-locality
scorer matches against a task's inputs.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from worldpool.artifacts.store import digest_of
from worldpool.errors import ArtifactError, HandlerError, ValidationError
from worldpool.models import Model
from worldpool.worker.handlers import TaskContext

GIT_TIMEOUT_S = 120.0
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "worldpool",
    "GIT_AUTHOR_EMAIL": "worldpool@localhost",
    "GIT_COMMITTER_NAME": "worldpool",
    "GIT_COMMITTER_EMAIL": "worldpool@localhost",
}


class WorkspaceSnapshot(Model):
    """Names (and digests) of a snapshot's artifacts, as a step's result carries them."""

    commit: str
    bundle: str
    bundle_digest: str
    diff: str
    diff_digest: str

    @property
    def key(self) -> str:
        return f"workspace:{self.commit}"


def git(
    cwd: Path,
    *args: str,
    data: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> bytes:
    """Run git in ``cwd``; on failure raise HandlerError with git's own message."""
    env = {**os.environ, **_GIT_ENV, **(env or {})}
    proc = subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        cwd=cwd,
        input=data,
        env=env,
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", errors="replace").strip()
        raise HandlerError(f"git {args[0]} failed: {message}", retryable=False)
    return proc.stdout


def snapshot(ctx: TaskContext, worktree: Path, prefix: str = "workspace") -> WorkspaceSnapshot:
    """Store ``worktree`` (HEAD + uncommitted changes + untracked files) as artifacts."""
    commit = git(worktree, "rev-parse", "HEAD").decode().strip()
    with tempfile.TemporaryDirectory(prefix="worldpool-snap-") as tmp:
        bundle_path = Path(tmp) / "head.bundle"
        git(worktree, "bundle", "create", "--quiet", str(bundle_path), "HEAD")
        bundle = bundle_path.read_bytes()
        diff = _full_diff(worktree, {"GIT_INDEX_FILE": str(Path(tmp) / "index")})
    bundle_ref = ctx.store(f"{prefix}.bundle", bundle, "application/x-git-bundle")
    diff_ref = ctx.store(f"{prefix}.diff", diff, "text/x-diff")
    return WorkspaceSnapshot(
        commit=commit,
        bundle=bundle_ref.name,
        bundle_digest=bundle_ref.digest,
        diff=diff_ref.name,
        diff_digest=diff_ref.digest,
    )


def _full_diff(worktree: Path, env: dict[str, str]) -> bytes:
    """Diff of HEAD against everything in the worktree, through a throw-away index."""
    git(worktree, "read-tree", "HEAD", env=env)
    git(worktree, "add", "--all", env=env)
    return git(worktree, "diff", "--cached", "--binary", "HEAD", env=env)


class WorkspaceCache:
    """One clean clone per commit under ``root``; thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def keys(self) -> list[str]:
        """What to advertise in ``WorkerState.cached``."""
        keys: list[str] = []
        for entry in sorted(self.root.iterdir()):
            if _COMMIT.match(entry.name) and (entry / ".git").is_dir():
                keys.append(f"workspace:{entry.name}")
                marker = entry / ".git" / "worldpool-bundle-digest"
                if marker.is_file():
                    keys.append(marker.read_text().strip())
        return keys

    def has(self, commit: str) -> bool:
        return (self.root / commit / ".git").is_dir()

    def checkout(self, commit: str, bundle: bytes) -> Path:
        """The cached clone of ``commit``, made from ``bundle`` unless already there."""
        if not _COMMIT.match(commit):
            raise ValidationError(f"{commit!r} is not a full git commit id")
        target = self.root / commit
        with self._lock:
            if (target / ".git").is_dir():
                return target
            with tempfile.TemporaryDirectory(dir=self.root, prefix=".incoming-") as tmp:
                bundle_path = Path(tmp) / "in.bundle"
                bundle_path.write_bytes(bundle)
                staging = Path(tmp) / "clone"
                git(self.root, "clone", "--quiet", "--no-checkout", str(bundle_path), str(staging))
                git(staging, "checkout", "--quiet", "--detach", commit)
                (staging / ".git" / "worldpool-bundle-digest").write_text(digest_of(bundle))
                staging.rename(target)  # atomic: a half-made clone is never visible
        return target

    def materialize(self, snap: WorkspaceSnapshot, bundle: bytes, diff: bytes, dest: Path) -> Path:
        """A private copy of the snapshot at ``dest`` (created; must not exist or be empty)."""
        if digest_of(bundle) != snap.bundle_digest or digest_of(diff) != snap.diff_digest:
            raise ArtifactError("workspace snapshot artifacts do not match their digests")
        cached = self.checkout(snap.commit, bundle)
        if dest.exists() and any(dest.iterdir()):
            raise ValidationError(f"cannot materialise a workspace into non-empty {dest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        git(
            dest.parent,
            "clone",
            "--quiet",
            "--no-hardlinks",
            "--no-checkout",
            str(cached),
            str(dest),
        )
        git(dest, "checkout", "--quiet", "--detach", snap.commit)
        if diff.strip():
            git(dest, "apply", "--binary", "--whitespace=nowarn", "-", data=diff)
        return dest


def read_snapshot(ctx: TaskContext, value: object) -> WorkspaceSnapshot:
    try:
        return WorkspaceSnapshot.model_validate(value)
    except ValueError as exc:
        raise ValidationError(f"payload 'snapshot' is not a workspace snapshot: {exc}") from exc


def snapshot_resolver(cache: WorkspaceCache) -> Callable[[TaskContext, Path], None]:
    """For the shell executor: materialise ``payload.snapshot`` into the step's workspace."""

    def resolve(ctx: TaskContext, dest: Path) -> None:
        snap = read_snapshot(ctx, ctx.payload.get("snapshot"))
        cache.materialize(snap, ctx.read(snap.bundle), ctx.read(snap.diff), dest)
        ctx.advertise(snap.key, snap.bundle_digest)  # what cache.keys() lists from now on

    return resolve
