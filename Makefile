# `make demo` and `make test` are the two set-up commands of the README.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheels on this machine type; override e.g. TORCH_SPEC="torch>=2.1" TF_SPEC=tensorflow.
TORCH_SPEC ?= torch==2.13.0
TF_SPEC ?= tensorflow-cpu
JAX_SPEC ?= jax
BACKENDS ?= tensorflow torch jax
PYTEST_ARGS ?=
# Test processes per backend (pytest-xdist, one test file per process): most test time is
# single-threaded compilation (XLA, TF tracing), so two processes use both cores of CI.
# Whole files go to a worker (their module fixtures are built once), slowest first: the order
# of tests/conftest.py's SLOW_FILES, which xdist's default reorder by test count would undo.
TEST_WORKERS ?= 2
# One compute thread per test process: with two workers on two cores, each framework's own
# pool of one thread per core oversubscribes the machine, and OpenMP's barrier waits for a
# descheduled thread (torch's suite: 375 s with the default threads, 274 s with one, same
# run). Subprocesses of the tests inherit it.
TEST_THREADS ?= 1
# JAX compiles one XLA program per weight shape and per model input shape; a persistent cache
# lets the cross-backend subprocess tests and later runs reuse them.
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES ?= 0
# The tests check numbers, not kernel speed: cheaper XLA CPU code generation cuts the JAX
# suite's compile time (one program per weight shape, model and input size) by about a third.
# XLA's legacy CPU fusion emitters compile a zoo model's training step in about 60% of the
# time of the default MLIR ones (tiny HSSDCT: 20 s instead of 35 s on the 2-core CPU).
# TensorFlow's XLA reads the same flags. Benchmarks and user runs keep XLA's defaults.
TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true \
	--xla_cpu_use_fusion_emitters=false --xla_cpu_multi_thread_eigen=false

.PHONY: install test lint demo clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q "$(TF_SPEC)" "$(JAX_SPEC)" -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Runs the suite once per backend; fails if any backend fails. Tests marked
# `backend_independent` (numpy only: readers, classical methods, simulation) run once, under
# the first backend; every other test runs under each. The 20 slowest tests are listed.
test: $(VENV)/.installed
	@status=0; first=1; for b in $(BACKENDS); do \
	  echo "=== KERAS_BACKEND=$$b"; \
	  if [ $$first = 1 ]; then sel=""; else sel="not backend_independent"; fi; \
	  OMP_NUM_THREADS=$(TEST_THREADS) TF_NUM_INTRAOP_THREADS=$(TEST_THREADS) \
	  XLA_FLAGS="$(TEST_XLA_FLAGS) $$XLA_FLAGS" KERAS_BACKEND=$$b $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20 $${sel:+-m "$$sel"} $(PYTEST_ARGS) tests || status=1; \
	  first=0; \
	done; exit $$status

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check keras_hsifusion tests training benchmarks tools
	$(VENV)/bin/ruff format --check keras_hsifusion tests training benchmarks tools

demo: $(VENV)/.installed
	$(PY) -m keras_hsifusion.demo

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
