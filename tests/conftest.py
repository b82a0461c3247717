"""pytest hooks of the suite: a fixed seed and a cleared Keras session around every test.

The shared helpers (fixtures, closeness checks, tiny configs, layer and model tests) live in
the importable module `tests/harness.py` (`from harness import ...`; `tests/` is on
`pythonpath` in pyproject.toml).
"""

import gc
import os
import random

import keras
import numpy as np
import pytest
from harness import BACKEND

# The files whose tests take longest (seconds of one run per backend, `--durations`, on the
# 2-core CI machine), longest first. `make test` distributes whole files over two xdist
# workers (`--dist loadfile --no-loadscope-reorder`): starting with the longest files keeps
# one worker from being handed a long file when the other is nearly done. Files not listed
# keep their collection order, after these. JAX's order differs (XLA compiles whole
# training steps, so the zoo-model and training files lead); torch follows TensorFlow's.
# Numbers: each file's total in the `--durations=0` run of a clean clone (2026-12-05).
SLOW_FILES = {
    "tensorflow": {
        "test_adapt.py": 56,
        "test_wheel.py": 50,
        "test_presets.py": 40,
        "test_hssdct.py": 36,
        "test_fuse.py": 33,
        "test_gpu_check.py": 28,
        "test_msst_net.py": 28,
        "test_cli.py": 26,
        "test_data_scenes.py": 25,
        "test_training.py": 24,
    },
    "jax": {
        "test_hssdct.py": 100,
        "test_adapt.py": 76,
        "test_cli.py": 54,
        "test_training.py": 49,
        "test_presets.py": 36,
        "test_msst_net.py": 36,
        "test_gpu_check.py": 30,
        "test_reliability_training.py": 30,
        "test_subspace_skip.py": 28,
        "test_fuse.py": 26,
        "test_distributed.py": 24,
    },
}


@pytest.fixture(autouse=True)
def _seed_and_clear(request):
    if request.node.get_closest_marker("backend_independent"):
        # numpy only: the seeds `set_random_seed` sets besides the backend's, and no
        # `clear_session` (its garbage collection costs about 0.5 s a test under TensorFlow).
        random.seed(0)
        np.random.seed(0)
        yield
        return
    keras.utils.set_random_seed(0)
    yield
    _clear_session()


# `clear_session` runs Python's full garbage collection, which walks every object of the
# frameworks (TensorFlow, torch, JAX: ~700,000): 0.4-0.7 s a test, 290-300 s of each
# backend's suite. After it the survivors are frozen (`gc.freeze`), so the next collection
# walks only what later tests create (~0.003 s); every FULL_COLLECT_EVERY tests everything is
# unfrozen and collected once, so what a module fixture held is freed too.
FULL_COLLECT_EVERY = 100
_cleared = [0]


def _clear_session():
    _cleared[0] += 1
    if _cleared[0] % FULL_COLLECT_EVERY == 0:
        gc.unfreeze()
    keras.backend.clear_session()  # garbage collection included
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """Runs the slowest files first (a stable sort: the order within a file is kept)."""
    slow = SLOW_FILES.get(BACKEND, SLOW_FILES["tensorflow"])
    items.sort(key=lambda item: -slow.get(item.path.name, 0))


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}, pid {os.getpid()}"
