"""Worker pools for the simulator: the seed's pool, a generated world pool, pool files.

* :func:`seed_pool` — the seven workers of the seed architecture (GPU boxes in Tokyo,
  London and San Francisco; browser VMs in AWS us-east-1, GCP europe-west1 and Azure
  eastasia; one on-prem Firecracker host). The demo reuses it.
* :func:`world_pool` — N workers (10,000 by default) over :data:`WORLD_REGIONS` (24
  regions, all three clouds and every macro-region), with a GPU / browser / sandbox mix,
  prices by GPU type and region, and capacities from the seed (8 concurrent LLM requests,
  4 browser sessions, 32 micro-VMs).
* :func:`load_pool_file` — a JSON or TOML list of WorkerProfile; ``location`` may be a
  catalogue code (``"tokyo"``) or a place as the seed writes it (``"Tokyo, Japan"``), and
  the seed's spelling is accepted as is (``worker_id``, ``hardware_capabilities`` with its
  groups, ``AgentCapability.CODING``). Every bad item is reported with file, item and reason.

Prices are the seed's figures where it gives them and list-price estimates otherwise
(USD per hour for the whole box); they only need to be plausible relative to each other.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from worldpool import geo
from worldpool.errors import ConfigError
from worldpool.models import (
    GPU,
    BrowserAutomation,
    CodeAnalysis,
    Hardware,
    Isolation,
    Location,
    Network,
    ResourceLimits,
    ServedModel,
    Virtualization,
    VisionModel,
    WorkerProfile,
)

BIG_MODEL = "qwen3-235b"
SMALL_MODEL = "qwen3-8b"
GPU_HANDLERS = frozenset({"plan", "analyze", "fix", "review", "llm"})
BROWSER_HANDLERS = frozenset({"browser_check", "browser"})
SANDBOX_HANDLERS = frozenset({"run_tests", "shell", "apply_patch"})
GPU_CAPS = frozenset({"coding", "planning", "reviewing", "research", "debugging"})
BROWSER_CAPS = frozenset({"browser_operations", "research"})
SANDBOX_CAPS = frozenset({"shell_operations", "testing", "file_operations"})
ORCHESTRATOR_REGION = "us-east-1"  # the seed's primary region


def _big_models(tokens_per_s: float) -> list[ServedModel]:
    return [
        ServedModel(
            name=BIG_MODEL, context_tokens=128_000, tokens_per_s=tokens_per_s, concurrent_requests=8
        ),
        ServedModel(
            name=SMALL_MODEL,
            context_tokens=32_768,
            tokens_per_s=tokens_per_s * 3,
            concurrent_requests=8,
        ),
    ]


def _gpu_hardware(kind: str) -> Hardware:
    if kind == "H100":
        gpus, tps = [GPU(model="H100-80GB", vram_gb=80, count=4)], 80.0
    elif kind == "L4":
        return Hardware(
            cpus=16,
            memory_gb=64,
            disk_gb=500,
            gpus=[GPU(model="L4", vram_gb=24, count=1)],
            tools=["jedi"],
            models=[
                ServedModel(
                    name=SMALL_MODEL,
                    context_tokens=32_768,
                    tokens_per_s=60.0,
                    concurrent_requests=4,
                )
            ],
        )
    else:
        gpus, tps = [GPU(model="A100-80GB", vram_gb=80, count=8)], 50.0
    return Hardware(
        cpus=64,
        memory_gb=512,
        disk_gb=2000,
        gpus=gpus,
        tools=["jedi"],
        models=_big_models(tps),
        # The seed's groups for its GPU boxes (its llm_inference is the big model above).
        vision_models=[SEED_VISION],
        code_analysis=SEED_CODE_ANALYSIS,
    )


# The seed's groups, built once and shared by every generated profile (nothing mutates
# them; a 10,000-worker pool would otherwise validate 40,000 more models).
SEED_CODE_ANALYSIS = CodeAnalysis(
    tool="jedi", language_support=["python", "javascript", "typescript"]
)
SEED_VISION = VisionModel(name="qwen2-vl-72b", supports_ocr=True, engine="openai-compatible")
SEED_BROWSER = BrowserAutomation(
    tool="playwright", headless=False, vnc_port=5900, recording=True, concurrent_sessions=4
)
SEED_NETWORK = Network(bandwidth_mbps=1000, proxy_support=True, captcha_solving=True)
SEED_VIRTUALIZATION = Virtualization(
    platform="firecracker", concurrent_vms=32, boot_time_ms=125, snapshot_support=True
)
SEED_ISOLATION = Isolation(
    network_isolation=True,
    filesystem_isolation=True,
    resource_limits=ResourceLimits(max_memory_mb=2048, max_vcpu=2, max_disk_mb=10240),
)


def _browser_hardware() -> Hardware:
    return Hardware(
        cpus=16,
        memory_gb=64,
        disk_gb=200,
        tools=["playwright", "vnc"],
        browser="chromium",
        browser_automation=SEED_BROWSER,
        network=SEED_NETWORK,
    )


def _sandbox_hardware() -> Hardware:
    return Hardware(
        cpus=64,
        memory_gb=256,
        disk_gb=4000,
        tools=["git", "bwrap"],
        virtualization=SEED_VIRTUALIZATION,
        isolation=SEED_ISOLATION,
    )


def _latency(region: str, given: float | None = None) -> float:
    if given is not None:
        return given
    home = geo.location_for(ORCHESTRATOR_REGION)
    return round(geo.rtt_ms(home, geo.location_for(region)), 1)


def _profile(
    wid: str,
    kind: str,
    region: str,
    cost: float,
    *,
    gpu: str = "A100",
    latency_ms: float | None = None,
    provider: str = "",
) -> WorkerProfile:
    """One worker of ``kind`` (gpu, browser, sandbox) at catalogue ``region``."""
    if kind == "gpu":
        hw, caps, handlers, slots = _gpu_hardware(gpu), GPU_CAPS, GPU_HANDLERS, 8
        if gpu == "L4":
            slots = 4
    elif kind == "browser":
        hw, caps, handlers, slots = _browser_hardware(), BROWSER_CAPS, BROWSER_HANDLERS, 4
    else:
        hw, caps, handlers, slots = _sandbox_hardware(), SANDBOX_CAPS, SANDBOX_HANDLERS, 32
    labels = {"kind": kind, "macro_region": geo.location_for(region).macro_region}
    if provider:
        labels["provider"] = provider
    if kind == "gpu":
        labels["gpu"] = gpu.lower()
    return WorkerProfile(
        id=wid,
        capabilities=caps,
        handlers=handlers,
        hardware=hw,
        location=geo.location_for(region),
        cost_per_hour=cost,
        max_concurrency=slots,
        latency_to_orchestrator_ms=_latency(region, latency_ms),
        labels=labels,
    )


def seed_pool() -> list[WorkerProfile]:
    """The seed architecture's seven workers (ids, capabilities and handlers as the demo uses)."""
    return [
        _profile("dgx-tokyo-01", "gpu", "tokyo", 6.50, latency_ms=45, provider="on-prem"),
        _profile("dgx-london-02", "gpu", "london", 9.50, gpu="H100", provider="on-prem"),
        _profile("dgx-sf-01", "gpu", "san-francisco", 8.00, provider="on-prem"),
        _profile(
            "browser-aws-useast-03", "browser", "us-east-1", 0.80, latency_ms=12, provider="aws"
        ),
        _profile("browser-gcp-euwest-01", "browser", "europe-west1", 0.76, provider="gcp"),
        _profile("browser-azure-eastasia-01", "browser", "eastasia", 0.85, provider="azure"),
        _profile("sandbox-onprem-01", "sandbox", "on-prem", 1.20, latency_ms=8, provider="on-prem"),
    ]


# region -> relative size of the region's fleet; price multipliers by macro-region
WORLD_REGIONS: dict[str, float] = {
    "us-east-1": 10,
    "us-west-2": 6,
    "us-central1": 5,
    "eastus": 5,
    "westus2": 3,
    "ca-central-1": 2,
    "sa-east-1": 2,
    "brazilsouth": 1,
    "eu-west-1": 5,
    "eu-central-1": 5,
    "europe-west1": 4,
    "europe-west4": 3,
    "westeurope": 4,
    "uksouth": 3,
    "eu-north-1": 2,
    "ap-northeast-1": 5,
    "asia-northeast1": 3,
    "ap-southeast-1": 4,
    "eastasia": 3,
    "ap-south-1": 3,
    "australiaeast": 2,
    "koreacentral": 2,
    "me-central-1": 1,
    "southafricanorth": 1,
}
PRICE_MULTIPLIER: dict[str, float] = {
    "americas": 1.0,
    "europe": 1.08,
    "asia-pacific": 1.15,
    "middle-east": 1.2,
    "africa": 1.25,
}
BASE_PRICE: dict[str, float] = {
    "A100": 14.0,
    "H100": 22.0,
    "L4": 0.85,
    "browser": 0.77,
    "sandbox": 2.4,
}
KIND_SHARE = {"gpu": 0.3, "browser": 0.35, "sandbox": 0.35}
GPU_SHARE = {"A100": 0.4, "H100": 0.25, "L4": 0.35}


def world_pool(
    workers: int = 10_000, seed: int = 0, regions: dict[str, float] | None = None
) -> list[WorkerProfile]:
    """A generated pool of ``workers`` spread over ``regions`` (deterministic for ``seed``)."""
    if workers < 1:
        raise ConfigError(f"world pool size {workers}: it must be at least 1")
    weights = regions or WORLD_REGIONS
    codes = list(weights)
    for code in codes:
        geo.location_for(code)
    rng = np.random.default_rng(seed)
    p = np.array([weights[c] for c in codes], dtype=np.float64)
    region_of = rng.choice(len(codes), size=workers, p=p / p.sum())
    kinds = list(KIND_SHARE)
    kind_of = rng.choice(len(kinds), size=workers, p=list(KIND_SHARE.values()))
    gpus = list(GPU_SHARE)
    gpu_of = rng.choice(len(gpus), size=workers, p=list(GPU_SHARE.values()))
    jitter = rng.uniform(0.9, 1.1, size=workers)  # spot vs reserved vs list price
    out = []
    for i in range(workers):
        code = codes[int(region_of[i])]
        kind = kinds[int(kind_of[i])]
        gpu = gpus[int(gpu_of[i])]
        base = BASE_PRICE[gpu if kind == "gpu" else kind]
        mult = PRICE_MULTIPLIER[geo.location_for(code).macro_region]
        out.append(
            _profile(
                f"{kind}-{code}-{i:05d}",
                kind,
                code,
                round(base * mult * float(jitter[i]), 3),
                gpu=gpu,
                provider=geo.PROVIDERS[code],
            )
        )
    return out


# --------------------------------------------------------------------------- files


def load_pool_file(path: str | Path) -> list[WorkerProfile]:
    """Worker profiles from a JSON (list, or ``{"workers": [...]}``) or TOML
    (``[[workers]]``) file. Raises ConfigError listing every bad item."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read pool file: {exc.strerror}") from None
    items = _parse(path, text)
    profiles, errors, seen = [], [], set()
    for n, item in enumerate(items, start=1):
        where = f"{path}: item {n}"
        ident = item.get("id", item.get("worker_id")) if isinstance(item, dict) else None
        if isinstance(ident, str):
            where += f" (id {ident!r})"
        try:
            profile = _profile_from(item)
        except (ValueError, ConfigError) as exc:
            errors.append(f"{where}: {_reason(exc)}")
            continue
        if profile.id in seen:
            errors.append(f"{where}: worker id {profile.id!r} is used twice; ids must be unique")
        seen.add(profile.id)
        profiles.append(profile)
    if errors:
        raise ConfigError("bad pool file:\n  " + "\n  ".join(errors))
    if not profiles:
        raise ConfigError(f"{path}: the pool file lists no workers")
    return profiles


def _parse(path: Path, text: str) -> list[Any]:
    if path.suffix.lower() == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
    if isinstance(data, dict):
        data = data.get("workers")
    if not isinstance(data, list):
        raise ConfigError(
            f"{path}: expected a list of worker profiles (JSON list, or a 'workers' "
            "list / TOML [[workers]] tables)"
        )
    return data


def _profile_from(item: Any) -> WorkerProfile:
    if not isinstance(item, dict):
        raise ConfigError(f"expected a table/object, got {type(item).__name__}")
    item = dict(item)
    if "region" in item and "location" not in item:  # shorthand: region = "tokyo"
        item["location"] = item.pop("region")
    loc = item.get("location")
    if isinstance(loc, str):  # a code, or a place as the seed writes it ("Tokyo, Japan")
        item["location"] = geo.place_for(loc)
    elif isinstance(loc, dict) and "lat" not in loc:
        base = geo.location_for(str(loc.get("region", "")))
        item["location"] = Location(**{**base.model_dump(), **loc})
    return WorkerProfile.model_validate(item)


def _reason(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


def dump_pool(profiles: list[WorkerProfile], path: str | Path) -> None:
    """Write ``profiles`` as a JSON pool file that :func:`load_pool_file` reads back."""
    data = [p.model_dump(mode="json") for p in profiles]
    Path(path).write_text(json.dumps({"workers": data}, indent=1), encoding="utf-8")
