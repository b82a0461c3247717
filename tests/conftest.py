"""pytest hooks of the suite: a fixed seed and a cleared Keras session around every test.

The shared helpers (fixtures, closeness checks, tiny configs, layer and model tests) live in
the importable module `tests/harness.py` (`from harness import ...`; `tests/` is on
`pythonpath` in pyproject.toml).
"""

import os
import random

import keras
import numpy as np
import pytest
from harness import BACKEND

# The files whose tests take longest (seconds of one TensorFlow run, `--durations`, on the
# 2-core CI machine), longest first. `make test` distributes whole files over two xdist
# workers (`--dist loadfile --no-loadscope-reorder`): starting with the longest files keeps
# one worker from being handed a long file when the other is nearly done. Files not listed
# keep their collection order, after these.
SLOW_FILES = {
    "test_adapt.py": 160,
    "test_gpu_check.py": 135,
    "test_data_scenes.py": 100,
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
    keras.backend.clear_session()


def pytest_collection_modifyitems(config, items):
    """Runs the slowest files first (a stable sort: the order within a file is kept)."""
    items.sort(key=lambda item: -SLOW_FILES.get(item.path.name, 0))


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}, pid {os.getpid()}"
