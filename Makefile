# The README's two commands: `make demo` and `make test`. Each sets itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck bench chaos system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[redis,api,gpu,browser,sim,demo,celery,dev]'
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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
