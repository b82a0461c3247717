"""keras_hsifusion.layers.core: Conv2D/Dense equal Keras' own layers; the torch fast path runs."""

import keras
import numpy as np
import pytest
from conftest import BACKEND, assert_close, gradients
from harness import run_layer_test

from keras_hsifusion.layers import core
from keras_hsifusion.ops import _torch

CONV_CASES = [
    # (kwargs, fast path expected on torch)
    (dict(filters=6, kernel_size=3, padding="same"), True),
    (dict(filters=6, kernel_size=1), True),
    (dict(filters=6, kernel_size=4, strides=4), True),
    (dict(filters=6, kernel_size=3, padding="same", dilation_rate=2, activation="relu"), True),
    (dict(filters=6, kernel_size=3, padding="same", groups=2, use_bias=False), True),
    (dict(filters=6, kernel_size=2, padding="same"), False),  # even kernel: Keras' own
    (dict(filters=6, kernel_size=3, strides=2, padding="same"), False),
]


@pytest.fixture
def fast_calls(monkeypatch):
    calls = []
    for name in ("conv2d", "linear", "patch_unembed"):
        original = getattr(_torch, name)

        def spy(*args, _original=original, **kwargs):
            calls.append(1)
            return _original(*args, **kwargs)

        monkeypatch.setattr(_torch, name, spy)
    return calls


@pytest.fixture
def matmul_unembeds(monkeypatch):
    """Calls of the backend-agnostic patch un-embedding (the non-torch path)."""
    calls = []
    original = core.patch_unembed

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(core, "patch_unembed", spy)
    return calls


def _twins(ours_cls, keras_cls, kwargs, shape):
    ours, ref = ours_cls(**kwargs), keras_cls(**kwargs)
    ours.build(shape)
    ref.build(shape)
    ref.set_weights(ours.get_weights())
    return ours, ref


def _assert_bfloat16_follows(ours, ref, x, rtol):
    out = ours(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    expected = keras.ops.convert_to_numpy(keras.ops.cast(ref(x), "float32"))
    assert_close(keras.ops.cast(out, "float32"), expected, rtol=rtol)


@pytest.mark.parametrize("kwargs,fast", CONV_CASES)
def test_conv2d_equals_keras(kwargs, fast, fast_calls):
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 4)).astype("float32")
    ours, ref = _twins(core.Conv2D, keras.layers.Conv2D, kwargs, x.shape)
    assert_close(ours(x), keras.ops.convert_to_numpy(ref(x)), rtol=1e-5)
    assert len(fast_calls) == (1 if fast and BACKEND == "torch" else 0)


def test_dense_equals_keras_on_images_and_tokens(fast_calls):
    rng = np.random.default_rng(1)
    for shape in ((2, 5, 7, 6), (3, 6)):
        x = rng.normal(size=shape).astype("float32")
        ours, ref = _twins(core.Dense, keras.layers.Dense, dict(units=9, activation="gelu"), shape)
        assert_close(ours(x), keras.ops.convert_to_numpy(ref(x)), rtol=1e-5)
    assert len(fast_calls) == (2 if BACKEND == "torch" else 0)


@pytest.mark.parametrize(
    "kwargs,fast",
    [
        (dict(filters=5, kernel_size=4, strides=4), True),
        (dict(filters=5, kernel_size=(2, 3), strides=(2, 3), use_bias=False), True),
        (dict(filters=5, kernel_size=4, strides=2), False),  # overlapping: Keras' own
    ],
)
def test_conv2d_transpose_equals_keras(kwargs, fast, fast_calls, matmul_unembeds):
    x = np.random.default_rng(5).normal(size=(2, 3, 4, 6)).astype("float32")
    ours, ref = _twins(core.Conv2DTranspose, keras.layers.Conv2DTranspose, kwargs, x.shape)
    assert_close(ours(x), keras.ops.convert_to_numpy(ref(x)), rtol=1e-5)
    # Non-overlapping: one matmul on every backend (torch's own kernel on torch).
    assert len(fast_calls) == (1 if fast and BACKEND == "torch" else 0)
    assert len(matmul_unembeds) == (1 if fast and BACKEND != "torch" else 0)


def test_conv2d_transpose_bfloat16_and_symbolic_batch(matmul_unembeds):
    kwargs = dict(filters=3, kernel_size=4, strides=4, dtype="mixed_bfloat16")
    x = np.random.default_rng(6).normal(size=(2, 2, 3, 5)).astype("float32")
    ours, ref = _twins(core.Conv2DTranspose, keras.layers.Conv2DTranspose, kwargs, x.shape)
    _assert_bfloat16_follows(ours, ref, x, rtol=2e-2)
    assert len(matmul_unembeds) == (0 if BACKEND == "torch" else 1)
    # Unknown batch and spatial sizes in a functional graph.
    model = keras.Sequential([keras.Input((None, None, 5)), core.Conv2DTranspose(3, 2, strides=2)])
    assert model.output_shape == (None, None, None, 3)
    assert tuple(model(x).shape) == (2, 4, 6, 3)


def test_gradients_equal_keras():
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 4)).astype("float32")
    y = np.random.default_rng(3).normal(size=(2, 16, 16, 5)).astype("float32")

    def model(conv, dense, transpose):
        return keras.Sequential(
            [
                keras.Input((8, 8, 4)),
                conv(6, 3, padding="same", name="c"),
                dense(5, name="d"),
                transpose(5, 2, strides=2, name="t"),
            ]
        )

    ours = model(core.Conv2D, core.Dense, core.Conv2DTranspose)
    ref = model(keras.layers.Conv2D, keras.layers.Dense, keras.layers.Conv2DTranspose)
    ref.set_weights(ours.get_weights())
    g_ours, g_ref = gradients(ours, x, y).values(), gradients(ref, x, y).values()
    assert len(g_ours) == len(g_ref) == 6
    for a, b in zip(g_ours, g_ref):
        assert_close(a, b, rtol=1e-5, what="gradient")


def test_mixed_bfloat16_and_lora_follow_keras(fast_calls):
    x = np.random.default_rng(4).normal(size=(1, 6, 6, 4)).astype("float32")
    ours, ref = _twins(
        core.Conv2D,
        keras.layers.Conv2D,
        dict(filters=3, kernel_size=3, padding="same", dtype="mixed_bfloat16"),
        x.shape,
    )
    _assert_bfloat16_follows(ours, ref, x, rtol=1e-2)
    dense, dense_ref = _twins(core.Dense, keras.layers.Dense, dict(units=3), (2, 4))
    dense.enable_lora(2, b_initializer="ones")
    dense_ref.enable_lora(2, b_initializer="ones")
    dense_ref.lora_kernel_a.assign(dense.lora_kernel_a)
    assert_close(dense(x[0, 0, :2]), keras.ops.convert_to_numpy(dense_ref(x[0, 0, :2])))
    assert len(fast_calls) == (1 if BACKEND == "torch" else 0)  # the bf16 conv; LoRA is Keras'


@pytest.mark.parametrize(
    "cls,kwargs,out",
    [
        (core.Conv2D, dict(filters=3, kernel_size=3, padding="same"), (1, 6, 4, 3)),
        (core.Dense, dict(units=5), (1, 6, 4, 5)),
        (core.Conv2DTranspose, dict(filters=3, kernel_size=2, strides=2), (1, 12, 8, 3)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_layers_serialize_as_the_zoo_classes(cls, kwargs, out):
    x = np.random.default_rng(7).normal(size=(1, 6, 4, 2)).astype("float32")
    run_layer_test(cls, kwargs, x, out)
