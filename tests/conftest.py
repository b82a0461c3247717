import os
import pathlib

import keras
import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
BACKEND = keras.backend.backend()


def load_fixture(name):
    """Loads ``tests/fixtures/<name>.npz`` into a dict of numpy arrays."""
    with np.load(FIXTURES / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def split_fixture(data):
    """Splits a golden fixture into (state_dict, arrays): weights are stored as ``sd/<key>``."""
    sd = {k[3:]: v for k, v in data.items() if k.startswith("sd/")}
    rest = {k: v for k, v in data.items() if not k.startswith("sd/")}
    return sd, rest


def nchw_to_nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def assert_close(actual, expected, rtol=1e-4, atol=None, what="output"):
    """Relative closeness in the sense of the project: max|a-e| <= rtol * max|e| (+ atol)."""
    actual = np.asarray(keras.ops.convert_to_numpy(actual), dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    scale = max(np.max(np.abs(expected)), 1e-12)
    err = np.max(np.abs(actual - expected))
    bound = rtol * scale + (atol or 0.0)
    assert err <= bound, f"{what}: max abs error {err:.3e} > {bound:.3e} (scale {scale:.3e})"


@pytest.fixture(autouse=True)
def _seed_and_clear():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}, pid {os.getpid()}"
