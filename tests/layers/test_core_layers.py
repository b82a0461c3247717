"""keras_hsifusion.layers.core: Conv2D/Dense equal Keras' own layers; the torch fast path and
the JAX (CPU) matmul kernel gradients run."""

import keras
import numpy as np
import pytest
from harness import BACKEND, assert_close, gradients, run_layer_test, run_model

from keras_hsifusion.layers import core
from keras_hsifusion.ops import _torch
from keras_hsifusion.ops import conv as conv_ops
from keras_hsifusion.ops.patches import patch_embed

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


@pytest.mark.parametrize("kernel", [4, 5])
def test_large_patch_embedding_equals_keras_with_gradients(kernel, fast_calls):
    # A non-overlapping conv whose kernel (k * k * filters) is at least as large as its input
    # (B * H * W) runs on torch as a space-to-depth and one matmul (`layers.core`); kernel 5
    # leaves rows and columns past the last whole patch, which the conv drops.
    x = np.random.default_rng(7).normal(size=(2, 12, 12, 4)).astype("float32")
    kwargs = dict(filters=64, kernel_size=kernel, strides=kernel)
    ours, ref = _twins(core.Conv2D, keras.layers.Conv2D, kwargs, x.shape)
    assert_close(ours(x), keras.ops.convert_to_numpy(ref(x)), rtol=1e-5)
    assert len(fast_calls) == (1 if BACKEND == "torch" else 0)  # `_torch.linear`, not conv2d

    def model(conv, dense):  # a Dense first: its gradient needs the conv's input gradient
        return keras.Sequential([keras.Input((12, 12, 4)), dense(4, name="d"), conv(**kwargs)])

    ours, ref = model(core.Conv2D, core.Dense), model(keras.layers.Conv2D, keras.layers.Dense)
    ref.set_weights(ours.get_weights())
    y = np.random.default_rng(8).normal(size=(2, 12 // kernel, 12 // kernel, 64))
    g_ours, g_ref = gradients(ours, x, y.astype("float32")), gradients(ref, x, y.astype("float32"))
    assert len(g_ours) == len(g_ref) == 4
    for a, b in zip(g_ours.values(), g_ref.values()):
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


class _ConvOp(keras.layers.Layer):
    """A bias-free convolution through `khf.ops.conv` (matmul kernel gradients) or Keras'."""

    def __init__(self, op, kernel_size, dilation, padding, **kwargs):
        super().__init__(**kwargs)
        self.op, self.kernel_size, self.dilation, self.padding = op, kernel_size, dilation, padding

    def build(self, shape):
        k = self.kernel_size
        self.kernel = self.add_weight(
            (k, k, shape[-1], 5), initializer="glorot_uniform", name="kernel"
        )

    def call(self, x):
        if self.op == "matmul":
            return conv_ops.conv2d(x, self.kernel, (self.dilation,) * 2, self.padding)
        if self.op == "patches":
            return patch_embed(x, self.kernel)
        strides = self.kernel_size if self.op == "strided" else 1
        return keras.ops.conv(x, self.kernel, strides, self.padding, dilation_rate=self.dilation)


@pytest.mark.parametrize(
    "op,kernel_size,dilation,padding",
    [
        ("matmul", 3, 1, "same"),
        ("matmul", 5, 2, "same"),
        ("matmul", 3, 1, "valid"),
        ("matmul", 1, 1, "valid"),
        ("patches", 4, 1, "valid"),
    ],
)
def test_matmul_kernel_gradients_equal_the_convolution(op, kernel_size, dilation, padding):
    # keras_hsifusion.ops.conv / patches.patch_embed: the forward and both gradients equal
    # Keras' convolution on every backend (JAX CPU uses them inside Conv2D).
    x = np.random.default_rng(7).normal(size=(2, 13, 14, 3)).astype("float32")
    reference = "strided" if op == "patches" else "conv"
    models = []
    for kind in (op, reference):
        inputs = keras.Input(x.shape[1:])
        models.append(
            keras.Model(inputs, _ConvOp(kind, kernel_size, dilation, padding, name="c")(inputs))
        )
    ours, ref = models
    ref.set_weights(ours.get_weights())
    y = run_model(ref, x)
    assert_close(run_model(ours, x), y, rtol=1e-5)
    target = np.random.default_rng(8).normal(size=y.shape).astype("float32")
    g_ours, g_ref = gradients(ours, x, target), gradients(ref, x, target)
    for key in g_ref:
        assert_close(g_ours[key], g_ref[key], rtol=1e-5, what=f"gradient {key}")
    # The input gradient too (the kernel gradient is what the op replaces; dx is checked here).
    dx_ours, dx_ref = _input_gradient(ours, x, target), _input_gradient(ref, x, target)
    assert_close(dx_ours, dx_ref, rtol=1e-5, what="input gradient")


def _input_gradient(model, x, target):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(model(x) * target)
        return tape.gradient(loss, x).numpy()
    if BACKEND == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        torch.sum(model(x) * torch.as_tensor(target)).backward()
        return x.grad.numpy()
    import jax

    return np.asarray(jax.grad(lambda x: jax.numpy.sum(model(x) * target))(x))


@pytest.mark.parametrize("kwargs,fast", CONV_CASES)
def test_conv2d_on_jax_cpu_takes_the_matmul_kernel_gradient(kwargs, fast, monkeypatch):
    # On JAX (CPU), stride-1 and non-overlapping convolutions go through the matmul-gradient
    # ops; grouped, even-kernel "same" and other strided ones stay Keras' own.
    calls = []
    for name in ("_conv2d", "patch_embed"):
        original = getattr(core, name)

        def spy(*args, _original=original, **kw):
            calls.append(1)
            return _original(*args, **kw)

        monkeypatch.setattr(core, name, spy)
    x = np.random.default_rng(9).normal(size=(2, 12, 12, 4)).astype("float32")
    ours, ref = _twins(core.Conv2D, keras.layers.Conv2D, kwargs, x.shape)
    assert_close(ours(x), keras.ops.convert_to_numpy(ref(x)), rtol=1e-5)
    taken = fast and kwargs.get("groups", 1) == 1
    assert len(calls) == (1 if taken and BACKEND == "jax" else 0)
    assert core._xla_cpu() is (BACKEND == "jax")
