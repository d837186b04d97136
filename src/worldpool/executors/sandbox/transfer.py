"""A size-capped ``/workspace``: the host workspace copied into a tmpfs, and back.

bubblewrap mounts ``/workspace`` as a tmpfs of ``workspace_mb`` (``--size``), so writing
past it fails inside the sandbox with ENOSPC, whatever the host disk has free. The host
workspace is bound read-only at :data:`SOURCE_MOUNT`; a small ``sh`` wrapper copies it in,
runs the command (stdin ``/dev/null``), then streams ``/workspace`` back as a tar archive
on its stdin, which is one end of a socket pair whose other end the worker reads
(capped). The worker then replaces the host workspace's contents with the archive's,
each entry through :func:`tarfile.data_filter` (no absolute paths, no ``..``, no links
leaving the workspace, no devices, no setuid bits); entries it refuses are named in the
result's ``notes``.

The command cannot write to the host workspace itself, nor grow it past the cap. When a
limit stops the command (wall clock, processes, output flood, cancellation) the wrapper is
killed with it, nothing comes back, and the host workspace stays as it was before the run:
``notes`` says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tarfile
import tempfile
import threading
from pathlib import Path

from worldpool.errors import HandlerError

SOURCE_MOUNT = "/.workspace-in"
TMPFS_PAGE = 4096
SPOOL_IN_MEMORY = 8 * 1024 * 1024
WRAPPER_FAILED = 125  # the wrapper's own exit code when copying in fails
WRAPPER = (  # the top directory is the tmpfs itself: copy what is in it, not its mode
    f"find {SOURCE_MOUNT} -mindepth 1 -maxdepth 1 -exec cp -a -t /workspace -- {{}} + || "
    '{ echo "worldpool: the workspace does not fit the sandbox /workspace" >&2; '
    f"exit {WRAPPER_FAILED}; }}\n"
    '"$@" </dev/null\n'
    "rc=$?\n"
    "cd /workspace && tar --numeric-owner -cf - . >&0 2>/dev/null\n"
    'exit "$rc"\n'
)


def tmpfs_bytes(root: Path) -> int:
    """What ``root``'s files take on a tmpfs: each regular file's size in whole pages."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if not os.path.islink(os.path.join(dirpath, name)):
                    total += -(-st.st_size // TMPFS_PAGE) * TMPFS_PAGE
    return total


class Receiver:
    """Reads the archive the wrapper sends back, up to ``cap`` bytes, in a thread."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.ours, self.theirs = socket.socketpair()
        # closed by copy_back() or close()
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.size = 0
        self.overflow = False
        self._thread = threading.Thread(target=self._read, daemon=True)

    @property
    def child_fd(self) -> int:
        """The fd to give the sandbox as its stdin."""
        return self.theirs.fileno()

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """After the sandbox ended: drop our copy of its end (EOF), wait for the reader."""
        self.theirs.close()
        self._thread.join(timeout=30.0)
        self.ours.close()

    def _read(self) -> None:
        try:
            while chunk := self.ours.recv(65536):
                self.size += len(chunk)
                if self.size > self.cap:
                    self.overflow = True
                elif not self.overflow:
                    self.spool.write(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.theirs.close()
        self.ours.close()
        self.spool.close()

    def copy_back(self, dest: Path, limit_hit: str | None) -> list[str]:
        """Replace ``dest``'s contents with the archive; notes on what did not come back."""
        try:
            return self._copy_back(dest, limit_hit)
        finally:
            self.spool.close()

    def _copy_back(self, dest: Path, limit_hit: str | None) -> list[str]:
        if self.overflow:
            return [f"the workspace was not copied back: its archive is over {self.cap} bytes"]
        if self.size == 0:
            why = f"the {limit_hit} limit stopped the sandbox" if limit_hit else "nothing came"
            return [
                f"the workspace was not copied back ({why}): the host workspace is as it "
                "was before the run"
            ]
        self.spool.seek(0)
        try:
            with tarfile.open(fileobj=self.spool, mode="r:") as tar:
                members = tar.getmembers()  # reads it all: a cut-short archive fails here
                try:
                    _clear(dest)
                    return _extract(tar, members, dest)
                except OSError as exc:  # the host's disk, not the command: another worker
                    raise HandlerError(
                        f"copying the sandbox's workspace back to {dest} failed ({exc}): "
                        "the host workspace is incomplete; free space on the worker",
                        retryable=True,
                    ) from exc
        except tarfile.TarError as exc:
            return [f"the workspace was not copied back: its archive is unreadable ({exc})"]


def _clear(dest: Path) -> None:
    for entry in dest.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> list[str]:
    skipped: list[str] = []
    dirs: list[tuple[Path, int]] = []  # read-only directories get their mode at the end
    for member in members:
        if member.name in (".", "./"):
            continue
        try:
            safe = tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as exc:
            skipped.append(f"{member.name} ({type(exc).__name__})")
            continue
        if safe is None:
            continue
        if safe.isdir() and safe.mode is not None:
            dirs.append((dest / safe.name, safe.mode))
            safe = safe.replace(mode=safe.mode | 0o700, deep=False)
        tar.extract(safe, dest, filter="fully_trusted")  # already filtered above
    for path, mode in reversed(dirs):
        with contextlib.suppress(OSError):
            path.chmod(mode)
    if not skipped:
        return []
    shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return [f"{len(skipped)} workspace entries were not copied back (unsafe): {shown}"]
