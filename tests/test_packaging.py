"""The wheel as users get it: built from the sources, installed into a fresh virtual
environment that cannot see the checkout, it holds every file the code reads and its demo
runs. Slow-ish (a build and two installs from the package index or pip's cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REQUIRE_SYSTEM, require_binary

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "worldpool"
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
# Variables that would let the fresh environment's Python find the checkout or another venv.
LEAKY = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV", "MYPYPATH"}
EXTRAS_ONLY = [
    "fastapi",
    "uvicorn",
    "playwright",
    "pytest",
    "matplotlib",
    "boto3",
    "pynvml",
    "psutil",
    "jedi",
]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    return env | {"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _run(argv: list[str], cwd: Path, timeout_s: float) -> str:
    """The command's stdout; fails the test with its output when it exits non-zero."""
    done = subprocess.run(
        argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout


def _source_files() -> set[str]:
    """Every file of the package in the checkout, as wheel paths (caches left out)."""
    ignored = {"__pycache__", ".pytest_cache"}
    return {
        "worldpool/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and not ignored & set(path.parts) and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources so the build writes nothing into the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=LEFT_OUT)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    _run([*pip, "--wheel-dir", str(work / "dist"), str(source)], cwd=work, timeout_s=120)
    (built,) = (work / "dist").glob("worldpool-*.whl")
    return built


def _fresh_venv(where: Path, wheel: Path, extras: str) -> Path:
    """A new virtual environment outside the checkout with the wheel installed; its bin/."""
    assert not where.resolve().is_relative_to(ROOT), "the environment must not see the checkout"
    _run(
        [sys.executable, "-m", "venv", "--without-pip", str(where)], cwd=where.parent, timeout_s=60
    )
    python = where / "bin" / "python"
    # The running pip installs into the new environment (and its runtime dependencies from
    # the package index or pip's cache): no pip of its own to bootstrap.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    _run([*pip, f"{wheel}{extras}"], cwd=where.parent, timeout_s=180)
    return where / "bin"


def test_the_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("worldpool/")}
    expected = _source_files()
    assert expected - shipped == set(), "files of src/worldpool missing from the wheel"
    assert shipped - expected == set(), "files in the wheel that are not in src/worldpool"
    # What the code reads at run time, by name: the demo's sample project (pytest.ini, its
    # conftest and tests), the dashboard, the Lua scripts, the typing marker.
    for name in (
        "worldpool/py.typed",
        "worldpool/api/static/index.html",
        "worldpool/backends/redis/scripts/dispatch.lua",
        "worldpool/demo/project/pytest.ini",
        "worldpool/demo/project/conftest.py",
        "worldpool/demo/project/auth/login.py",
        "worldpool/demo/project/tests/test_login.py",
    ):
        assert name in shipped


def test_package_data_names_only_paths_that_exist() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        base = ROOT / "src" / package.replace(".", "/")
        for pattern in patterns:
            assert any(p.is_file() for p in base.glob(pattern)), (
                f"{package}: {pattern!r} matches nothing"
            )


def test_a_client_install_brings_no_worker_or_server_extras(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    where = tmp_path_factory.mktemp("client") / "venv"
    bin_dir = _fresh_venv(where, wheel, "[redis]")
    assert "Usage: worldpool" in _run([str(bin_dir / "worldpool"), "--help"], where, 60)
    probe = (  # the modules `submit`, `status` and `workers` use, and which extras came along
        "import importlib.util, json, worldpool, worldpool.cli.deployment\n"
        f"present = [n for n in {EXTRAS_ONLY!r} if importlib.util.find_spec(n) is not None]\n"
        "print(json.dumps({'module': worldpool.__file__, 'present': present}))"
    )
    found = json.loads(_run([str(bin_dir / "python"), "-c", probe], where, 60))
    assert Path(found["module"]).is_relative_to(where), found  # the wheel, not the checkout
    assert found["present"] == [], "a client install pulled in extras"
    # A worker on a client install names the extra it needs instead of an ImportError.
    done = subprocess.run(
        [str(bin_dir / "worldpool"), "worker", "--print-profile", "--no-builtin"],
        cwd=where,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'worldpool[worker]'" in done.stderr + done.stdout


def test_the_installed_demo_fixes_the_bug(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    require_binary("git", "git")  # the demo applies its patch with git apply
    sandboxed = shutil.which("bwrap") is not None or REQUIRE_SYSTEM
    with_browser = shutil.which("chromium") is not None or REQUIRE_SYSTEM
    where = tmp_path_factory.mktemp("demo") / "venv"
    bin_dir = _fresh_venv(where, wheel, "[demo]")
    cwd = where.parent / "elsewhere"
    cwd.mkdir()
    out = _run([str(bin_dir / "worldpool"), "demo", "--json", "--no-live"], cwd, 150)
    status = json.loads(out)
    assert status["status"] == "succeeded", out
    steps = {s["step"]: s for s in status["steps"]}
    assert steps["localization"]["attempts"] == 2  # the crashed worker's step failed over
    if sandboxed:  # the sample project's tests really ran, in bubblewrap
        assert str(steps["verify_tests"]["sandbox_id"]).startswith("bwrap-"), steps
    if with_browser:  # and its login page really opened in Chromium
        assert steps["verify_browser"]["screenshot"] is not None, steps
