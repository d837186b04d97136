"""NVIDIA GPUs through NVML (``nvidia-ml-py``, the ``gpu`` extra; ``make`` installs it).

:func:`detect_gpus` lists a machine's GPUs grouped by model, VRAM and MIG profile, with
the driver and CUDA versions. A GPU in MIG mode is listed as its slices (each a GPU of
the slice's memory, ``mig_profile`` such as ``1g.10gb``), not as the whole card, since a
slice is what a task gets. No library, no driver or no GPU all mean "no GPUs", never an
error; so does a flaky driver. :func:`redetect_loop` looks again now and then and reports
a change (a GPU lost, MIG reconfigured, a driver upgraded) so the worker re-registers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from worldpool.models import GPU

log = logging.getLogger(__name__)
GIB = 1024**3
_MIG_ENABLED = 1  # pynvml.NVML_DEVICE_MIG_ENABLE
_MIG_NAME = re.compile(r"\bMIG\s+(\S+)")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _versions(nvml: Any) -> tuple[str | None, str | None]:
    """(driver version, CUDA version the driver supports), None where NVML cannot say."""
    driver = cuda = None
    with contextlib.suppress(Exception):
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    with contextlib.suppress(Exception):
        raw = int(nvml.nvmlSystemGetCudaDriverVersion())  # e.g. 12040 for 12.4
        cuda = f"{raw // 1000}.{raw % 1000 // 10}"
    return driver, cuda


def _mig_slices(nvml: Any, handle: Any) -> list[Any] | None:
    """The MIG slices of a GPU in MIG mode; None when MIG is off or unsupported."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except Exception:  # NVMLError_NotSupported on GPUs without MIG; old bindings
        return None
    if current != _MIG_ENABLED:
        return None
    slices = []
    for index in range(int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))):
        try:
            slices.append(nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index))
        except Exception:  # NVMLError_NotFound: an empty slot
            continue
    return slices


def detect_gpus() -> list[GPU]:
    """NVIDIA GPUs (or MIG slices) grouped by model; empty without NVML, driver or GPUs."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return []
    try:
        driver, cuda = _versions(pynvml)
        groups: dict[tuple[str, float, str | None], int] = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            slices = _mig_slices(pynvml, handle)
            for unit in slices if slices is not None else [handle]:
                name = _text(pynvml.nvmlDeviceGetName(unit))
                vram = round(pynvml.nvmlDeviceGetMemoryInfo(unit).total / GIB, 1)
                mig = _MIG_NAME.search(name) if slices is not None else None
                key = (name, vram, mig.group(1) if mig else None)
                groups[key] = groups.get(key, 0) + 1
        return [
            GPU(
                model=name,
                vram_gb=vram,
                count=count,
                mig_profile=mig,
                driver_version=driver,
                cuda_version=cuda,
            )
            for (name, vram, mig), count in sorted(groups.items(), key=lambda kv: str(kv[0]))
        ]
    except Exception:  # a flaky driver must not stop the worker
        log.warning("NVML failed while listing GPUs; advertising none", exc_info=True)
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


async def redetect_loop(
    current: Callable[[], list[GPU]],
    on_change: Callable[[list[GPU]], Awaitable[None]],
    *,
    interval_s: float = 300.0,
    detect: Callable[[], list[GPU]] = detect_gpus,
) -> None:
    """Every ``interval_s``: detect again; call ``on_change`` when the GPUs differ."""
    while True:
        await asyncio.sleep(interval_s)
        found = await asyncio.to_thread(detect)
        if found != current():
            log.warning("the GPUs changed: %s", ", ".join(g.model for g in found) or "none left")
            await on_change(found)
