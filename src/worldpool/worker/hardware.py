"""What a worker really has: detection, profile building, and claim checks.

``detect_hardware()`` reads CPUs (the ones this process may use), memory (the smaller of
the machine's and a cgroup limit), free disk (psutil), NVIDIA GPUs through NVML
(:mod:`.gpus`: several GPUs, MIG slices, driver and CUDA versions; no library, no driver or
no GPU all mean "no GPUs", never an error), the tools on PATH and the local vision engine
(Tesseract, advertised under vision models with ``supports_ocr``). ``build_profile()`` merges detection with the worker's config, config
winning for region, cost, labels and capabilities. ``check_claims()`` lists what the
profile claims but the machine cannot back; the worker refuses to start on any.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs installed
import pydantic

from worldpool.backends.base import Backend
from worldpool.errors import ConfigError
from worldpool.models import (
    Capability,
    Hardware,
    Location,
    VisionModel,
    WorkerProfile,
)
from worldpool.worker.gpus import detect_gpus
from worldpool.worker.hardware_groups import detect_groups, group_problems
from worldpool.workflow.naming import format_pydantic_error

GIB = 1024**3
KVM_DEVICE = Path("/dev/kvm")
#: tool name -> executables that provide it (first found wins)
TOOLS: dict[str, tuple[str, ...]] = {
    "chromium": ("chromium", "chromium-browser", "google-chrome"),
    "bwrap": ("bwrap",),
    "git": ("git",),
    "xvfb": ("Xvfb",),
    "x11vnc": ("x11vnc",),
    "tesseract": ("tesseract",),
    "pdftoppm": ("pdftoppm",),
}
#: Debian packages to suggest when a tool is missing
PACKAGES = {
    "chromium": "chromium",
    "bwrap": "bubblewrap",
    "git": "git",
    "xvfb": "xvfb",
    "x11vnc": "x11vnc",
    "tesseract": "tesseract-ocr",
    "pdftoppm": "poppler-utils",
}
_CGROUP_MEMORY_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
SANDBOX_PROVIDERS = ("bubblewrap", "locale2b", "local")


# --------------------------------------------------------------------------- detection


def detect_tools() -> list[str]:
    tools = [name for name, exes in TOOLS.items() if any(shutil.which(e) for e in exes)]
    if KVM_DEVICE.exists() and os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        tools.append("kvm")
    return sorted(tools)


def _memory_gb() -> float:
    total = psutil.virtual_memory().total
    for path in _CGROUP_MEMORY_FILES:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
    return round(float(total) / GIB, 1)


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, int(psutil.cpu_count(logical=True) or 1))


def detect_hardware(disk_path: Path | None = None) -> Hardware:
    """This machine's hardware; free disk is measured where ``disk_path`` lives (cwd)."""
    tools = detect_tools()
    disk = psutil.disk_usage(str(disk_path or Path.cwd())).free / GIB
    cpus = _cpus()
    return Hardware.model_validate(
        {
            "cpus": cpus,
            "memory_gb": max(0.1, _memory_gb()),
            "disk_gb": round(disk, 1),
            "gpus": detect_gpus(),
            "tools": tools,
            "browser": "chromium" if "chromium" in tools else None,
            "vision_models": _local_vision(tools),
            **detect_groups(tools, cpus),  # the seed's groups this machine shows
        }
    )


def _local_vision(tools: list[str]) -> list[VisionModel]:
    """Tesseract, when installed: the OCR engine of the ``vision`` executor."""
    version = tesseract_version() if "tesseract" in tools else None
    if version is None:
        return []
    return [VisionModel(name=f"tesseract-{version}", engine="tesseract", supports_ocr=True)]


def tesseract_version() -> str | None:
    """``tesseract 5.3.0`` -> ``"5.3.0"``; None when Tesseract is not installed."""
    exe = shutil.which("tesseract")
    if exe is None:
        return None
    done = subprocess.run([exe, "--version"], capture_output=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).decode(errors="replace").split("\n", 1)[0]
    return first.split()[-1] if first.strip() else "unknown"


async def measure_rtt_ms(backend: Backend, samples: int = 5) -> float:
    """Median round trip of ``backend.now()`` in milliseconds."""
    times: list[float] = []
    for _ in range(max(1, samples)):
        start = time.perf_counter()
        await backend.now()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 3)


# --------------------------------------------------------------------------- profile


def build_profile(
    config: WorkerProfile | Mapping[str, Any],
    detected: Hardware,
    *,
    rtt_ms: float | None = None,
    handlers: Iterable[str] = (),
) -> WorkerProfile:
    """``config`` merged over ``detected``.

    ``config`` is a WorkerProfile or a mapping of its fields; a mapping may give
    ``region`` (a catalogue code) instead of ``location``. Config wins for region, cost,
    labels and capabilities; for hardware, only the fields it sets replace detection
    (served models, a virtualization name, ...), and tool lists are merged.
    """
    fields = (
        config.model_dump(exclude_unset=True) if isinstance(config, WorkerProfile) else dict(config)
    )
    region = fields.pop("region", None)
    if isinstance(fields.get("location"), str):  # "tokyo", or the seed's "Tokyo, Japan"
        from worldpool.geo import place_for

        fields["location"] = place_for(fields["location"])
    if "location" not in fields:
        if region is None:
            raise ConfigError("a worker needs a region (e.g. --region eu-west-1 or 'on-prem')")
        fields["location"] = _location(str(region))
    claimed_hw = dict(fields.pop("hardware", None) or {})
    claimed_hw.update(fields.pop("hardware_capabilities", None) or {})  # the seed's spelling
    if isinstance(claimed_hw.get("tools"), list):
        claimed_hw["tools"] = sorted(set(detected.tools) | set(claimed_hw["tools"]))
    hardware = Hardware.model_validate({**detected.model_dump(), **claimed_hw})
    names = set(fields.pop("handlers", None) or ()) | set(handlers)
    if rtt_ms is not None:
        fields["latency_to_orchestrator_ms"] = rtt_ms
    try:
        return WorkerProfile.model_validate(
            {**fields, "hardware": hardware, "handlers": frozenset(names)}
        )
    except pydantic.ValidationError as exc:  # one line, as a workflow file's mistakes read
        raise ConfigError(f"invalid worker profile: {format_pydantic_error(exc)}") from None
    except ValueError as exc:
        raise ConfigError(f"invalid worker profile: {exc}") from exc


def _location(region: str) -> Location:
    from worldpool.geo import location_for  # the region catalogue is big; load on use

    return location_for(region)


# --------------------------------------------------------------------------- claims


def check_claims(
    profile: WorkerProfile,
    detected: Hardware | None = None,
    *,
    sandbox_provider: str | None = None,
    unsafe_local_shell: bool = False,
) -> list[str]:
    """Problems with what ``profile`` claims, one sentence each (empty = all backed).

    ``detected`` defaults to :func:`detect_hardware`. ``sandbox_provider`` is the shell
    provider the worker will use (None: bubblewrap when ``bwrap`` is present).
    """
    hw = detected if detected is not None else detect_hardware()
    caps = profile.capabilities
    problems: list[str] = []
    if Capability.BROWSER_OPERATIONS.value in caps and "chromium" not in hw.tools:
        problems.append(
            "claims browser_operations but no Chromium was found: install the "
            "Debian package 'chromium' or drop the capability"
        )
    shell_caps = sorted(caps & {Capability.SHELL_OPERATIONS.value, Capability.TESTING.value})
    if shell_caps:
        problem = _sandbox_problem(hw, sandbox_provider, unsafe_local_shell)
        if problem:
            problems.append(f"claims {', '.join(shell_caps)} but {problem}")
    claimed = profile.hardware
    if claimed.gpu_count > hw.gpu_count:
        problems.append(
            f"claims {claimed.gpu_count} GPU(s) but {hw.gpu_count} were detected "
            "(NVML via nvidia-ml-py and the NVIDIA driver are needed to see them)"
        )
    elif claimed.max_vram_gb > hw.max_vram_gb + 0.5:
        problems.append(
            f"claims {claimed.max_vram_gb:g} GB of VRAM but the largest GPU "
            f"found has {hw.max_vram_gb:g} GB"
        )
    if profile.labels.get("gpu") == "required" and hw.gpu_count == 0:
        problems.append("is labelled gpu=required but no GPU was detected")
    for tool in sorted(set(claimed.tools) - set(hw.tools)):
        package = PACKAGES.get(tool)
        hint = f": install the Debian package {package!r}" if package else ""
        problems.append(f"claims the tool {tool!r} but it was not found{hint}")
    if claimed.memory_gb > hw.memory_gb * 1.05 + 0.5:
        problems.append(f"claims {claimed.memory_gb:g} GB of memory but has {hw.memory_gb:g} GB")
    if claimed.cpus > hw.cpus:
        problems.append(f"claims {claimed.cpus} CPUs but may use {hw.cpus}")
    local_ocr = {m.name for m in hw.vision_models if m.engine == "tesseract"}
    for model in claimed.vision_models:
        if model.engine == "tesseract" and model.name not in local_ocr:
            have = ", ".join(sorted(local_ocr)) or "no Tesseract"
            problems.append(
                f"claims the local OCR engine {model.name!r} but has {have}: install the "
                "Debian package 'tesseract-ocr'"
            )
    return problems + group_problems(claimed, hw)


def _sandbox_problem(hw: Hardware, provider: str | None, unsafe_local_shell: bool) -> str | None:
    provider = provider or ("bubblewrap" if "bwrap" in hw.tools else None)
    if provider is None:
        return (
            "no sandbox is available: install the Debian package 'bubblewrap', configure "
            "locale2b, or (trusted machines only) start with --unsafe-local-shell"
        )
    if provider not in SANDBOX_PROVIDERS:
        return f"the sandbox provider {provider!r} is unknown (use {', '.join(SANDBOX_PROVIDERS)})"
    if provider == "bubblewrap" and "bwrap" not in hw.tools:
        return "bubblewrap is not installed (Debian package 'bubblewrap')"
    if provider == "local" and not unsafe_local_shell:
        return "the local provider has no isolation: start with --unsafe-local-shell to allow it"
    return None
