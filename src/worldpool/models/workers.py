"""Workers as the router sees them: capabilities, hardware, location, profile and state.

A worker advertises a :class:`WorkerProfile` once and a :class:`WorkerState` on every
heartbeat; :class:`Worker` is the pair.
"""

from __future__ import annotations

import difflib
import re
from enum import Enum
from typing import Any

from pydantic import Field, field_validator, model_validator

from worldpool.models.base import Model, now_s
from worldpool.models.hardware import Hardware


class Capability(str, Enum):
    """The seed's capability set. Custom capabilities are strings starting with ``x-``."""

    CODING = "coding"
    PLANNING = "planning"
    REVIEWING = "reviewing"
    RESEARCH = "research"
    DEBUGGING = "debugging"
    TESTING = "testing"
    FILE_OPERATIONS = "file_operations"
    SHELL_OPERATIONS = "shell_operations"
    BROWSER_OPERATIONS = "browser_operations"


KNOWN_CAPABILITIES: frozenset[str] = frozenset(c.value for c in Capability)
CUSTOM_CAPABILITY_PREFIX = "x-"
_CUSTOM_RE = re.compile(r"^x-[a-z0-9][a-z0-9_.-]{0,62}$")


def normalize_capability(value: str) -> str:
    """Validate one capability name; unknown names get a did-you-mean hint. The seed's
    spelling (``AgentCapability.BROWSER_OPERATIONS``) is accepted.

    >>> normalize_capability("Browser_Operations")
    'browser_operations'
    """
    value = value.removeprefix("AgentCapability.")
    name = value.strip().lower().replace("-", "_") if not value.startswith("x-") else value
    name = name.strip()
    if name in KNOWN_CAPABILITIES:
        return name
    if _CUSTOM_RE.match(name):
        return name
    close = difflib.get_close_matches(name, sorted(KNOWN_CAPABILITIES), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown capability {value!r}.{hint} Known: {', '.join(sorted(KNOWN_CAPABILITIES))}; "
        "custom capabilities must start with 'x-' (for example 'x-gpu-render')."
    )


def _capability_set(values: Any) -> frozenset[str]:
    if isinstance(values, str):
        values = [values]
    return frozenset(
        normalize_capability(str(v.value if isinstance(v, Enum) else v)) for v in values
    )


class Location(Model):
    """Where a worker (or a user) is. Build one from a region code with ``geo.location_for``."""

    region: str = Field(description="cloud region or city code, e.g. 'ap-northeast-1', 'tokyo'")
    city: str = ""
    lat: float = Field(default=0.0, ge=-90, le=90)
    lon: float = Field(default=0.0, ge=-180, le=180)
    macro_region: str = Field(default="", description="americas, europe, asia-pacific, ...")
    timezone: str = Field(default="UTC", description="IANA name, e.g. 'Asia/Tokyo'")


# --------------------------------------------------------------------------- workers


class WorkerStatus(str, Enum):
    ONLINE = "online"
    DRAINING = "draining"
    OFFLINE = "offline"


class WorkerProfile(Model):
    """What a worker is and has. Sent once at registration (and again if it changes)."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    capabilities: frozenset[str] = Field(default_factory=frozenset)
    handlers: frozenset[str] = Field(
        default_factory=frozenset, description="handler names this worker can run"
    )
    hardware: Hardware = Field(default_factory=Hardware)
    location: Location
    cost_per_hour: float = Field(default=0.0, ge=0, description="USD per hour")
    max_concurrency: int = Field(default=1, ge=1, description="task slots")
    latency_to_orchestrator_ms: float = Field(default=0.0, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    credential_proof: str | None = Field(
        default=None, description="HMAC of the worker id by its key: proves the credential"
    )

    @model_validator(mode="before")
    @classmethod
    def _seed_spelling(cls, data: Any) -> Any:
        """The seed writes ``worker_id`` and ``hardware_capabilities`` (its groups)."""
        if not isinstance(data, dict) or not (
            "worker_id" in data or "hardware_capabilities" in data
        ):
            return data
        data = dict(data)
        if "worker_id" in data:
            data.setdefault("id", data.pop("worker_id"))
        groups = data.pop("hardware_capabilities", None) or {}
        hardware = data.get("hardware")
        if isinstance(hardware, Hardware):
            hardware = hardware.model_dump(exclude_unset=True)
        data["hardware"] = {**(hardware or {}), **groups}
        return data

    @field_validator("capabilities", mode="before")
    @classmethod
    def _normalize_capabilities(cls, v: Any) -> frozenset[str]:
        return _capability_set(v)


class WorkerState(Model):
    """A worker's live state: what every heartbeat carries."""

    worker_id: str
    status: WorkerStatus = WorkerStatus.ONLINE
    running: int = Field(default=0, ge=0, description="tasks running or reserved now")
    last_heartbeat: float = Field(default_factory=now_s)
    heartbeat_seq: int = Field(
        default=0, ge=0, description="one more per heartbeat the worker tried to send"
    )
    consuming: bool = Field(
        default=True, description="False: its reads of new work have been stuck (failed over)"
    )
    latency_ms: float | None = Field(default=None, ge=0, description="measured RTT to backend")
    cached: list[str] = Field(
        default_factory=list, description="artifact digests / workspace keys held locally"
    )
    sticky_keys: list[str] = Field(
        default_factory=list, description="affinity keys whose context is warm here"
    )


class Worker(Model):
    """A profile and its latest state, as the router sees it."""

    profile: WorkerProfile
    state: WorkerState

    @property
    def id(self) -> str:
        return self.profile.id

    @property
    def free_slots(self) -> int:
        return max(0, self.profile.max_concurrency - self.state.running)
