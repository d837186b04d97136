"""`make gpu-check`: on a machine with an NVIDIA GPU, check what CI cannot.

1. NVML (nvidia-ml-py) sees the GPUs: models, VRAM, MIG slices, driver and CUDA versions;
2. the bundled model (the local-llm extra) is served by llama.cpp with every layer on the
   GPU when llama-cpp-python was built with CUDA (LLAMA_CMAKE_ARGS=-DGGML_CUDA=on), and
   on the CPU for comparison;
3. the worker's own benchmark measures tokens/s and concurrency of each.

Prints one JSON document (record it in docs/workers.md) and exits 1 when no GPU is seen.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from worldpool.executors import llm_local
from worldpool.executors.llm_local import MODEL_ALIAS, LocalLLMServer
from worldpool.worker.gpus import detect_gpus
from worldpool.worker.served_models import measure_served


def served_on(gpu_layers: int) -> dict[str, Any]:
    with LocalLLMServer(gpu_layers=gpu_layers) as server:
        served, problems = asyncio.run(
            measure_served(server.base_url, default_model=MODEL_ALIAS, max_level=8)
        )
    if problems or not served:
        return {"problems": problems}
    return served[0].model_dump(exclude={"measured_at"})


def main() -> int:
    report: dict[str, Any] = {"gpus": [g.model_dump() for g in detect_gpus()]}
    gaps = llm_local.missing()
    if gaps:
        report["model"] = f"not run: missing {', '.join(gaps)}"
    else:
        import llama_cpp

        offload = bool(llama_cpp.llama_supports_gpu_offload())
        report["llama_cpp"] = {"version": llama_cpp.__version__, "gpu_offload": offload}
        report["cpu"] = served_on(0)
        report["gpu"] = (
            served_on(-1) if offload else "not run: rebuild with LLAMA_CMAKE_ARGS=-DGGML_CUDA=on"
        )
    print(json.dumps(report, indent=2))
    return 0 if report["gpus"] else 1


if __name__ == "__main__":
    sys.exit(main())
