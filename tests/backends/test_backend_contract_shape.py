"""The shape of the contract itself: what a backend must provide, that the product uses all
of it, and that the Redis scripts' shared rules are put together once per script."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import worldpool
from worldpool.backends import Backend, MemoryBackend
from worldpool.backends.redis import lua

SRC = Path(worldpool.__file__).parent


def public_methods() -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(Backend, inspect.isfunction)
        if not name.startswith("_")
    )


def test_the_calls_every_submit_needs_are_abstract() -> None:
    assert {"create_tasks", "dispatch_many"} <= Backend.__abstractmethods__
    # A backend written from scratch that lacks them does not build at all.
    namespace = {
        name: getattr(MemoryBackend, name)
        for name in Backend.__abstractmethods__ - {"create_tasks", "dispatch_many"}
    }
    incomplete = type("Incomplete", (Backend,), namespace)
    with pytest.raises(TypeError, match="create_tasks") as caught:
        incomplete()
    assert "dispatch_many" in str(caught.value)


def test_every_backend_method_is_used_by_the_product() -> None:
    product = "\n".join(
        path.read_text("utf-8")
        for path in SRC.rglob("*.py")
        if "backends" not in path.relative_to(SRC).parts
    )
    unused = [name for name in public_methods() if not re.search(rf"\.{name}\b", product)]
    assert unused == []


@pytest.mark.parametrize("name", lua.SCRIPT_NAMES)
def test_scripts_include_each_shared_rule_once(name: str) -> None:
    text = lua.source(name)

    assert "--@include" not in text
    defined = re.findall(r"^local function (\w+)", text, re.MULTILINE)
    assert len(defined) == len(set(defined))
    for called in (
        "stored_version",
        "slot_refusal",
        "owns",
        "server_now",
        "dispatch_task",
        "append_event",
    ):
        if re.search(rf"\b{called}\(", text):
            assert called in defined, f"{name}.lua calls {called} without including it"


def test_the_rules_are_not_written_out_again_in_a_script() -> None:
    scripts = Path(inspect.getfile(lua)).parent / "scripts"
    for path in scripts.glob("[!_]*.lua"):
        text = path.read_text("utf-8")
        assert "'TIME'" not in text, path.name  # _clock.lua
        assert "'version') or" not in text, path.name  # _versions.lua
        assert "'attempt', 'worker', 'terminal')" not in text, path.name  # _fencing.lua
        assert "SISMEMBER" not in text, path.name  # _slots.lua
