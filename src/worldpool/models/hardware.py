"""A worker's hardware: the basics (CPUs, memory, GPUs, tools, served models) and the
seed's hardware groups, typed, under the seed's names.

The seed's profiles write ``hardware_capabilities = {"browser_automation": {...},
"virtualization": {...}, ...}``; here each group is a model and a field of
:class:`Hardware` with the same name (``code_analysis``, ``browser_automation``,
``network``, ``virtualization``, ``isolation`` with its ``resource_limits``). The seed's
``llm_inference`` and ``vision_models`` tables are read as entries of the lists
``models`` and ``vision_models`` (:mod:`worldpool.models.inference`). A group a worker
does not have is None.

Task requirements reach the groups through ``Requirements.features``: ``"group.field"``
keys, checked by :func:`feature_problem` (the hardware filter's ``features`` code).
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, Field, field_validator, model_validator

from worldpool.models.base import Model
from worldpool.models.inference import ServedModel, VisionModel


class GPU(Model):
    """GPUs of one model (or MIG slices of one profile), as NVML reports them."""

    model: str = Field(description="marketing name, e.g. 'A100-80GB', 'H100'")
    vram_gb: float = Field(gt=0, description="per GPU (per slice for MIG)")
    count: int = Field(default=1, ge=1)
    mig_profile: str | None = Field(default=None, description="e.g. '1g.10gb'; None: whole GPU")
    driver_version: str | None = None
    cuda_version: str | None = Field(default=None, description="what the driver supports")


# --------------------------------------------------------------------------- seed groups


class CodeAnalysis(Model):
    """Static analysis the worker can run (the seed: jedi for Python, JS, TS)."""

    tool: str = Field(description="e.g. 'jedi'")
    language_support: list[str] = Field(default_factory=list)


class BrowserAutomation(Model):
    """A browser the worker drives, and how it can be watched."""

    tool: str = Field(default="playwright")
    headless: bool = True
    vnc_port: int | None = Field(
        default=None, ge=1, le=65535, description="a live VNC view is served (port of the first)"
    )
    recording: bool = Field(default=False, description="Playwright traces and HAR recorded")
    concurrent_sessions: int = Field(default=1, ge=1)


class Network(Model):
    bandwidth_mbps: float | None = Field(default=None, gt=0)
    proxy_support: bool = False
    captcha_solving: bool = False


class Virtualization(Model):
    """How the worker isolates work in VMs (or, for bubblewrap, namespaces)."""

    platform: str = Field(description="firecracker, kvm, bubblewrap, ...")
    concurrent_vms: int = Field(default=1, ge=1, description="VMs it can run at once")
    boot_time_ms: float | None = Field(default=None, ge=0)
    snapshot_support: bool = False


class ResourceLimits(Model):
    """The most one sandboxed task may use."""

    max_memory_mb: int | None = Field(default=None, gt=0)
    max_vcpu: int | None = Field(default=None, gt=0)
    max_disk_mb: int | None = Field(default=None, gt=0)


class Isolation(Model):
    network_isolation: bool = False
    filesystem_isolation: bool = False
    resource_limits: ResourceLimits | None = None


GROUPS: dict[str, type[Model]] = {
    "llm_inference": ServedModel,  # Hardware.models, one entry per served LLM
    "vision_models": VisionModel,  # Hardware.vision_models
    "code_analysis": CodeAnalysis,
    "browser_automation": BrowserAutomation,
    "network": Network,
    "virtualization": Virtualization,
    "isolation": Isolation,
}


# The seed's llm_inference fields -> ServedModel's.
SEED_LLM_FIELDS = {
    "max_context": "context_tokens",
    "tokens_per_second": "tokens_per_s",
    "concurrent_requests": "concurrent_requests",
}
# Groups that are lists on Hardware: a requirement is met when one entry meets it.
LIST_GROUPS = {"llm_inference": "models", "vision_models": "vision_models"}


def _without(table: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k != key}


class Hardware(Model):
    cpus: int = Field(default=1, ge=1)
    memory_gb: float = Field(default=1.0, gt=0)
    disk_gb: float = Field(default=0.0, ge=0)
    gpus: list[GPU] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="e.g. chromium, bwrap, git, kvm")
    models: list[ServedModel] = Field(
        default_factory=list, description="llm_inference: the LLMs the worker serves"
    )
    vision_models: list[VisionModel] = Field(default_factory=list)
    browser: str | None = Field(default=None, description="e.g. 'chromium'")
    # The seed's other groups (None: the worker does not have it).
    code_analysis: CodeAnalysis | None = None
    browser_automation: BrowserAutomation | None = None
    network: Network | None = None
    virtualization: Virtualization | None = Field(
        default=None, description="a platform name ('firecracker') is read as {platform: ...}"
    )
    isolation: Isolation | None = None

    @model_validator(mode="before")
    @classmethod
    def _seed_model_groups(cls, data: Any) -> Any:
        """The seed writes one ``llm_inference`` and one ``vision_models`` table; they are
        a served model and a vision model here."""
        if not isinstance(data, dict) or not (
            "llm_inference" in data or isinstance(data.get("vision_models"), dict)
        ):
            return data
        data = dict(data)
        llm = data.pop("llm_inference", None)
        if isinstance(llm, dict) and llm.get("model"):
            served = {"name": llm["model"]}
            for seed_name, name in SEED_LLM_FIELDS.items():
                if llm.get(seed_name) is not None:
                    served[name] = llm[seed_name]
            data["models"] = [*data.get("models", []), served]
        vision = data.get("vision_models")
        if isinstance(vision, dict):
            data["vision_models"] = (
                [
                    {
                        "name": vision["model"],
                        "engine": "openai-compatible",
                        **_without(vision, "model"),
                    }
                ]
                if vision.get("model")
                else []
            )
        return data

    @field_validator("virtualization", mode="before")
    @classmethod
    def _platform_name(cls, v: Any) -> Any:
        return {"platform": v} if isinstance(v, str) else v

    @property
    def gpu_count(self) -> int:
        return sum(g.count for g in self.gpus)

    @property
    def max_vram_gb(self) -> float:
        return max((g.vram_gb for g in self.gpus), default=0.0)


# --------------------------------------------------------------------------- requirements

FeatureValue = bool | int | float | str | list[str]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X | None`` (or ``X``), if the field holds one."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def check_feature_key(key: str) -> str:
    """``group.field`` (or ``isolation.resource_limits.field``) naming a typed field."""
    parts = key.split(".")
    model: type[BaseModel] | None = GROUPS.get(parts[0])
    if model is None or len(parts) < 2:
        raise ValueError(
            f"feature {key!r}: use 'group.field' with a group of {', '.join(GROUPS)}"
            " (for example 'virtualization.snapshot_support')"
        )
    for name in parts[1:]:
        if model is None:
            raise ValueError(f"feature {key!r}: {name!r} is below a plain value")
        fields = model.model_fields
        if name not in fields:
            raise ValueError(
                f"feature {key!r}: {model.__name__} has no field {name!r}"
                f" (it has {', '.join(fields)})"
            )
        model = _nested_model(fields[name].annotation)
    if model is not None:
        raise ValueError(f"feature {key!r} is a group: name one of its fields")
    return key


def _lookup(obj: BaseModel, key: str) -> Any:
    value: Any = obj
    for name in key.split("."):
        if value is None:
            return None
        value = getattr(value, name, None)
    return value


def feature_problem(hardware: Hardware, key: str, wanted: FeatureValue) -> str | None:
    """Why ``hardware`` does not meet ``key: wanted`` (None: it does). A bool must match,
    a number is a minimum, a string matches case-insensitively, a list must be contained.
    For a list group (served LLMs, vision models) one entry has to meet it."""
    group, _, rest = key.partition(".")
    if group in LIST_GROUPS:
        entries = getattr(hardware, LIST_GROUPS[group])
        problems = [_value_problem(_lookup(entry, rest), key, wanted) for entry in entries]
        if any(problem is None for problem in problems):
            return None
        return problems[0] if problems else _value_problem(None, key, wanted)
    return _value_problem(_lookup(hardware, key), key, wanted)


def _value_problem(have: Any, key: str, wanted: FeatureValue) -> str | None:
    if have is None or have is False:
        if wanted is False:
            return None
        return f"has no {key}"
    if isinstance(wanted, bool):
        return None if bool(have) is wanted else f"has {key}={have}, task needs {wanted}"
    if isinstance(wanted, int | float):
        if isinstance(have, bool) or not isinstance(have, int | float):
            return f"has {key}={have!r}, task needs at least {wanted:g}"
        return None if have >= wanted else f"has {key}={have:g}, task needs at least {wanted:g}"
    if isinstance(wanted, str):
        return None if str(have).lower() == wanted.lower() else f"has {key}={have}, needs {wanted}"
    held = {str(x).lower() for x in have} if isinstance(have, list) else {str(have).lower()}
    lacking = sorted({w.lower() for w in wanted} - held)
    return f"{key} lacks {', '.join(lacking)}" if lacking else None
