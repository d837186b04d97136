"""Secrets by reference: resolved on the worker, handed to the handler, never sent back.

A task names the secrets it needs, ``{"OPENAI_API_KEY": "env:OPENAI_API_KEY"}``; the
orchestrator stores and sends only those references. The worker resolves each one here,
from its own environment (``env:VAR``) or a file it can read (``file:/run/secrets/key``,
a mounted secret), just before the handler starts. A reference it cannot resolve fails
the step, not retryable on this worker, naming the reference and never a value. The
values go to the handler through ``ctx.secret(name)`` (and to sandboxed shell commands as
environment variables), and :func:`scrub` masks any of them that a handler lets slip into
its result, error, logs or metadata before the report leaves the worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from worldpool.errors import HandlerError
from worldpool.redact import MASK

MAX_FILE_BYTES = 64 * 1024
MIN_SCRUB_CHARS = 4  # shorter values would mask ordinary text (and guard nothing)


def resolve(refs: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each name's value; HandlerError naming every reference that does not resolve."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, ref in refs.items():
        kind, _, where = ref.partition(":")
        value: str | None = None
        if kind == "env":
            value = env.get(where)
        elif kind == "file":
            value = _read_file(Path(where))
        if value is None or not value:
            missing.append(f"{name} ({ref})")
        else:
            values[name] = value
    if missing:
        raise HandlerError(
            "this worker cannot resolve the task's secrets: "
            + ", ".join(missing)
            + "; set them in the worker's environment (env:VAR) or mount the file "
            "(file:/path), or route the task to a worker that has them",
            retryable=True,  # another worker may hold them
        )
    return values


def _read_file(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_FILE_BYTES:
        return None
    return raw.decode("utf-8", errors="replace").strip()


def scrub_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_SCRUB_CHARS and value in text:
            text = text.replace(value, MASK)
    return text


def scrub(obj: Any, values: Iterable[str]) -> Any:
    """A JSON value with every secret value masked (unchanged, same object, if none in it)."""
    wanted = [v for v in values if len(v) >= MIN_SCRUB_CHARS]
    if not wanted:
        return obj
    raw = orjson.dumps(obj).decode()
    if not any(orjson.dumps(v).decode()[1:-1] in raw for v in wanted):
        return obj
    return _walk(obj, wanted)


def _walk(obj: Any, values: list[str]) -> Any:
    if isinstance(obj, str):
        return scrub_text(obj, values)
    if isinstance(obj, list):
        return [_walk(v, values) for v in obj]
    if isinstance(obj, dict):
        return {scrub_text(str(k), values): _walk(v, values) for k, v in obj.items()}
    return obj
