import os
import pathlib

import keras
import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
BACKEND = keras.backend.backend()
NEXT_BACKEND = {"tensorflow": "torch", "torch": "jax", "jax": "tensorflow"}


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


def gradients(model, inputs, target):
    """Gradients of the mean absolute error w.r.t. every trainable weight, on any backend."""
    backend = keras.backend.backend()
    weights = model.trainable_weights
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(inputs, training=True) - target))
        grads = tape.gradient(loss, weights)
    elif backend == "torch":
        import torch

        loss = torch.mean(torch.abs(model(inputs, training=True) - torch.as_tensor(target)))
        grads = torch.autograd.grad(loss, [w.value for w in weights], allow_unused=True)
    else:
        import jax

        non_trainable = [v.value for v in model.non_trainable_weights]

        def loss_fn(trainable):
            y, _ = model.stateless_call(trainable, non_trainable, inputs, training=True)
            return jax.numpy.mean(jax.numpy.abs(y - target))

        grads = jax.jit(jax.grad(loss_fn))([w.value for w in weights])
    return {
        w.path: None if g is None else np.asarray(keras.ops.convert_to_numpy(g), np.float64)
        for w, g in zip(weights, grads)
    }


def run_model(model, inputs):
    """One inference batch the cheapest way per backend on this CPU, as numpy (nested like
    the model's outputs).

    TF and torch run eagerly (tracing or XLA-compiling a whole fusion network costs tens of
    seconds per input shape); JAX runs compiled (its eager mode compiles every op).
    Graph-mode TF is exercised explicitly where it matters (dynamic sizes).
    """
    outputs = model.predict_on_batch(inputs) if BACKEND == "jax" else model(inputs, training=False)
    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), outputs)
