"""The sandbox battery again, as an unprivileged user: the path a non-root worker takes.

A worker running as root sandboxes through ``setpriv`` to a fresh uid; one that is not root
has bubblewrap make a user namespace, with other rules (RLIMIT_NPROC counts the worker
user's processes, the tmpfs and the files belong to the mapped user). CI runs as root, so
this test re-runs both battery files in a child ``pytest`` under an unused uid, with
``WORLDPOOL_REQUIRE_SYSTEM=1`` (a skip there is a failure).

The interpreter, the virtualenv and the checkout may sit under a directory only root may
enter (a pyenv in root's home, say): the child runs in a mount namespace (bwrap as root, no user
namespace) where each such directory is a world-readable empty tmpfs holding read-only
binds of just what is needed. The test skips, saying why, only when this kernel lets no
unprivileged user make a user namespace (then no non-root worker can sandbox here at all).
When the suite itself runs unprivileged, the battery already took the non-root path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_binary

REPO = Path(__file__).resolve().parents[2]
BATTERY = ["tests/executors/test_sandbox_battery.py", "tests/executors/test_sandbox_limits.py"]
UNPRIVILEGED_UID = 1_999_000_013  # no login, no process, outside the sandbox uid range


def _needed_paths() -> list[Path]:
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    paths.add(REPO)
    paths.update(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    return sorted(p.resolve() for p in paths if p.exists())


def _closed_ancestor(path: Path) -> Path | None:
    """The highest directory above ``path`` that other users cannot enter, if any."""
    for ancestor in reversed(path.parents):
        if ancestor != Path("/") and not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def _exposing_mounts() -> list[str]:
    """bwrap arguments that make every needed path reachable by an unprivileged uid."""
    hidden: list[Path] = []
    binds: list[str] = []
    for path in _needed_paths():
        closed = _closed_ancestor(path)
        if closed is None:
            continue
        if closed not in hidden:
            hidden.append(closed)
            binds += ["--perms", "0755", "--tmpfs", str(closed)]
        for parent in reversed(path.parents):
            if parent.is_relative_to(closed) and parent != closed:
                binds += ["--perms", "0755", "--dir", str(parent)]
        binds += ["--ro-bind", str(path), str(path)]
    return binds


def _as_unprivileged(argv: list[str], bwrap: str, setpriv: str) -> list[str]:
    uid = str(UNPRIVILEGED_UID)
    return [
        bwrap,
        "--dev-bind",
        "/",
        "/",
        *_exposing_mounts(),
        "--",
        setpriv,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--",
        *argv,
    ]


@pytest.fixture
def home() -> Iterator[Path]:
    """A home directory the unprivileged uid owns, in a place it can reach (pytest's own
    temporary directories are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="wp-unprivileged-", dir="/tmp"))
    try:
        os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_sandbox_battery_passes_as_an_unprivileged_user(home: Path) -> None:
    bwrap = require_binary("bwrap", "bubblewrap")
    setpriv = require_binary("setpriv", "util-linux")
    if os.geteuid() != 0:
        pytest.skip(
            f"the suite runs unprivileged (uid {os.geteuid()}): the sandbox battery itself "
            "took the non-root path"
        )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "worldpool-unprivileged",
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.environ.get("PYTHONPATH", f"{REPO / 'src'}:{REPO}"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "WORLDPOOL_REQUIRE_SYSTEM": "1",
    }
    probe = subprocess.run(
        _as_unprivileged(
            [bwrap, "--unshare-user", "--ro-bind", "/", "/", "--", "true"], bwrap, setpriv
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(
            "this kernel lets no unprivileged user make a user namespace, so no non-root "
            f"worker can sandbox here: {probe.stderr.strip()[-300:]}"
        )
    who = subprocess.run(
        _as_unprivileged([sys.executable, "-c", "import os; print(os.geteuid())"], bwrap, setpriv),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert who.stdout.strip() == str(UNPRIVILEGED_UID), who.stderr
    battery = subprocess.run(
        _as_unprivileged(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                "-rs",
                "--basetemp",
                str(home / "pytest"),
                *BATTERY,
            ],
            bwrap,
            setpriv,
        ),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    output = battery.stdout + battery.stderr
    assert battery.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 20, summary
    assert "skipped" not in summary and "failed" not in summary, summary
