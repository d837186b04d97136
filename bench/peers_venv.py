"""The peers' own virtual environment: ``bench/.peers-venv`` (gitignored), pinned versions.

The peers are never worldpool dependencies: the benchmark installs them here, once, with
pip (the stamp file names the pins, so changing a pin reinstalls).
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".peers-venv"
PINS = (
    "taskiq==0.11.18",
    "taskiq-redis==1.0.9",
    "dramatiq[redis]==1.18.0",
    "saq==0.24.5",
    "celery[redis]==5.5.3",
    "redis==5.2.1",
)


def python() -> str:
    return str(VENV / "bin" / "python")


def ensure() -> str:
    """The peers venv's python, creating and installing it first if needed."""
    stamp = VENV / ".pins"
    if stamp.exists() and stamp.read_text() == "\n".join(PINS):
        return python()
    if not (VENV / "bin" / "python").exists():
        venv.create(VENV, with_pip=True)
    print(f"installing the peers into {VENV} (once): {', '.join(PINS)}", file=sys.stderr)
    subprocess.run([python(), "-m", "pip", "install", "-q", *PINS], check=True)
    stamp.write_text("\n".join(PINS))
    return python()


def versions() -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({p: m.version(p) for p in "
        "('taskiq','taskiq-redis','dramatiq','saq','celery','redis')}))"
    )
    out = subprocess.run([python(), "-c", code], capture_output=True, text=True, check=True)
    import json

    result: dict[str, str] = json.loads(out.stdout)
    return result
