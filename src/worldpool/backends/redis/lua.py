"""The Lua scripts in ``scripts/*.lua``, registered on a client.

Each script is registered once per client; redis-py's Script objects call EVALSHA and
reload the script on NOSCRIPT (after a Redis restart or SCRIPT FLUSH), so callers never
see that error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

SCRIPT_NAMES = (
    "register",
    "heartbeat",
    "mark_offline",
    "reserve_send",
    "complete",
    "reclaim",
    "put_record",
    "add_pending",
    "lease_acquire",
    "lease_release",
    "dead_letter",
    "dispatch",
    "create_task",
)


@cache
def source(name: str) -> str:
    """The text of ``scripts/<name>.lua`` (shipped as package data)."""
    return resources.files(__package__).joinpath("scripts", f"{name}.lua").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class Scripts:
    register: AsyncScript
    heartbeat: AsyncScript
    mark_offline: AsyncScript
    reserve_send: AsyncScript
    complete: AsyncScript
    reclaim: AsyncScript
    put_record: AsyncScript
    add_pending: AsyncScript
    lease_acquire: AsyncScript
    lease_release: AsyncScript
    dead_letter: AsyncScript
    dispatch: AsyncScript
    create_task: AsyncScript

    @classmethod
    def load(cls, client: Redis) -> Scripts:
        return cls(**{name: client.register_script(source(name)) for name in SCRIPT_NAMES})
