"""The shared test harness of the zoo, in the spirit of keras-hub's `TestCase`.

- `run_layer_test`: build and call a layer, compare the output shape with the symbolic one,
  round-trip its config (JSON, `from_config`, registered serialization) and a `.keras` file
  of a model around it (same outputs), and run it under `mixed_bfloat16`.
- `run_fusion_model_test`: call a model, round-trip its config and a `.keras` file (same
  outputs), load that file under another backend in a subprocess (bit-identical weights,
  outputs equal to float32 rounding), run it under `mixed_bfloat16`, and check that a model
  built with an explicit dtype policy reloads with that policy under the global default.

Every test keeps its models tiny: the suite runs once per backend on a 2-core CPU.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import keras
import numpy as np

# The repository root and the golden fixtures: test files live in subfolders of tests/ that
# mirror the package, so they find both through here, not through their own __file__.
ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
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


PREVIOUS_BACKEND = {after: before for before, after in NEXT_BACKEND.items()}
MIXED = "mixed_bfloat16"

# Tiny configurations of the zoo models, shared by their tests (seconds per test).
HSSDCT_TINY = dict(hsi_bands=8, msi_bands=3, nf=32, gc=16)
MSST_NET_TINY = dict(
    hsi_bands=4,
    msi_bands=3,
    scale=4,
    n_feats=4,
    hsi_embed_dim=4,
    msi_embed_dim=8,
    hsi_heads=2,
    msi_heads=2,
    patch_size=4,
    hsi_res_blocks=1,
    msi_res_blocks=1,
    hsi_num_layers=1,
    msi_num_layers=1,
    reference_size=(2, 3),
)

# Tiny experiment configs (`training.validate_config`), shared by the training, command-line,
# distributed and reliability tests: a 96x96 crop of Indian Pines (test region: its
# rightmost 32 columns; validation strip: the bottom 16 rows of the rest), every 20th band,
# 16x16 patches, and models whose steps take well under a second.
TINY_DATA = {
    "crop": 96,
    "test_size": 32,
    "val_size": 16,
    "val_axis": 0,
    "band_step": 20,
    "patch_size": 16,
    "batch_size": 2,
    "patches_per_epoch": 2,
}
HSSDCT_CONFIG_TINY = {"class": "HSSDCT", "nf": 32, "gc": 16, "window_size": 2, "mlp_ratio": 2.0}
MSST_CONFIG_TINY = {
    "class": "MSSTNet",
    **{k: v for k, v in MSST_NET_TINY.items() if k not in ("hsi_bands", "msi_bands", "scale")},
    "n_feats": 8,
    "reference_size": [4, 4],
}


def fusion_inputs(hsi_bands, msi_bands, scale, h, w, batch=1, seed=0):
    """Random `{"lr_hsi": (batch, h, w, C), "hr_msi": (batch, scale*h, scale*w, c)}`."""
    rng = np.random.default_rng(seed)
    return {
        "lr_hsi": rng.random((batch, h, w, hsi_bands), dtype=np.float32),
        "hr_msi": rng.random((batch, scale * h, scale * w, msi_bands), dtype=np.float32),
    }


class WriteRecorder:
    """An `out=` target for `fuse` that keeps what was written and where: `writes` lists
    `(row_start, row_stop, col_start, col_stop)` of every assignment."""

    def __init__(self, shape):
        self.shape, self.data, self.writes = shape, np.zeros(shape, np.float32), []

    def __setitem__(self, key, block):
        self.writes.append((key[0].start, key[0].stop, key[1].start, key[1].stop))
        self.data[key] = block


def to_numpy(x):
    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), x)


def _shapes(x):
    return keras.tree.map_structure(lambda t: tuple(t.shape), x)


def _shape_list(shapes):
    """A shape or a nested list of shapes as a flat list of shape tuples."""
    if isinstance(shapes, (tuple, list)) and all(d is None or isinstance(d, int) for d in shapes):
        return [tuple(shapes)]
    return [shape for item in shapes for shape in _shape_list(item)]


def _check_shapes(actual, expected, what):
    """`expected` is a shape or a nested list of shapes; None matches any size."""
    actual, expected = _shape_list(actual), _shape_list(expected)
    assert len(actual) == len(expected), f"{what}: {actual} != {expected}"
    for a, e in zip(actual, expected):
        ok = len(a) == len(e) and all(x is None or y is None or x == y for x, y in zip(a, e))
        assert ok, f"{what}: shape {a} != expected {e}"


def _check_serialization(obj, cls):
    """The config is JSON-serialisable, and the registered serialization (`from_config` of a
    JSON round trip) gives back an object of `cls` with the same config; returns it."""
    config = obj.get_config()
    serialized = keras.saving.serialize_keras_object(obj)
    assert serialized["registered_name"] == f"keras_hsifusion>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(restored) is cls and restored.get_config() == config
    return restored


def _check_policy(model_or_layer, policy):
    """The object and every sublayer with weights computes under `policy`."""
    assert model_or_layer.dtype_policy.name == policy, model_or_layer.dtype_policy
    for sub in model_or_layer._flatten_layers():
        if not isinstance(sub, keras.layers.InputLayer):
            assert sub.dtype_policy.name == policy, (sub.name, sub.dtype_policy)
    for w in model_or_layer.weights:
        if keras.backend.is_float_dtype(w.dtype):
            assert keras.backend.standardize_dtype(w.dtype) == "float32", w.path


def _wrap(layer, input_data):
    """A functional model around an already built `layer`, with `input_data`'s shapes."""
    inputs = keras.tree.map_structure(
        lambda x: keras.Input(shape=x.shape[1:], batch_size=x.shape[0]), input_data
    )
    return keras.Model(inputs, layer(inputs))


def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    run_saving_check=True,
    run_mixed_precision_check=True,
    expected_mixed_output_dtype="bfloat16",
):
    """Builds `cls(**init_kwargs)`, calls it on `input_data` (an array or a list of arrays)
    and checks the output shape (None in `expected_output_shape` matches any size), the
    symbolic output shape, the config round trip, a `.keras` round trip with identical
    outputs, and a `mixed_bfloat16` call.

    Returns the layer and its output (numpy).
    """
    layer = cls(**init_kwargs)
    output = to_numpy(layer(input_data))
    assert layer.built
    _check_shapes(_shapes(output), expected_output_shape, f"{cls.__name__} output")
    for value in keras.tree.flatten(output):
        assert np.all(np.isfinite(value)), f"{cls.__name__}: non-finite output"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    clone = _check_serialization(layer, cls)
    assert clone.built  # rebuilt from the saved build config
    assert [tuple(w.shape) for w in clone.weights] == [tuple(w.shape) for w in layer.weights]

    model = _wrap(layer, input_data)
    _check_shapes(model.output_shape, _shapes(output), f"{cls.__name__} symbolic output")
    if run_saving_check:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "layer.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        assert type(loaded.layers[-1]) is cls
        keras.tree.map_structure(
            lambda a, b: assert_close(a, b, rtol=1e-6, what=f"{cls.__name__} reloaded"),
            run_model(loaded, input_data),
            run_model(model, input_data),
        )

    if run_mixed_precision_check:
        mixed = cls(**init_kwargs, dtype=MIXED)
        out = mixed(input_data)
        _check_policy(mixed, MIXED)
        for value in keras.tree.flatten(out):
            dtype = keras.backend.standardize_dtype(value.dtype)
            if keras.backend.is_float_dtype(dtype):
                assert dtype == expected_mixed_output_dtype, (cls.__name__, dtype)
            value = to_numpy(keras.ops.cast(value, "float32"))
            assert np.all(np.isfinite(value)), f"{cls.__name__}: non-finite bfloat16 output"
    return layer, output


_LOAD_SCRIPT = """
import sys, numpy as np, keras, keras_hsifusion
model = keras.saving.load_model(sys.argv[1])
data = np.load(sys.argv[2])
weights = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
same = len(weights) == int(data["n"]) and all(
    np.array_equal(v, data["w/" + k]) for k, v in weights.items()
)
x = {k[2:]: data[k] for k in data.files if k.startswith("x/")}
x = x if len(x) > 1 else x[""]
y = model.predict_on_batch(x) if keras.backend.backend() == "jax" else model(x)
np.save(sys.argv[3], keras.ops.convert_to_numpy(y))
print(type(model).__name__, keras.backend.backend(), int(same))
"""


def _load_under(backend, path, model, input_data, tmp_path):
    """Loads `path` under `backend` in a subprocess; returns its output on `input_data`."""
    io = tmp_path / "io.npz"
    x = input_data if isinstance(input_data, dict) else {"": input_data}
    weights = {"w/" + w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    np.savez(io, n=len(weights), **{f"x/{k}": v for k, v in x.items()}, **weights)
    out = tmp_path / f"out_{backend}.npy"
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(path), str(io), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, loaded_backend, same = proc.stdout.strip().splitlines()[-1].split()
    assert (name, loaded_backend) == (type(model).__name__, backend)
    # The file is exact: every weight arrives bit-identical under the other backend.
    assert same == "1", f"weights differ after loading under {backend}"
    return np.load(out)


def run_fusion_model_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    tmp_path,
    setup=None,
    cross_backend="next",
    cross_backend_atol=0.0,
    cross_backend_rtol=1e-5,
    run_mixed_precision_check=True,
):
    """The checks every zoo model passes (see the module docstring).

    Args:
        cls: the model class; `init_kwargs` its constructor arguments.
        input_data: the model's inputs (numpy), e.g. from `fusion_inputs`.
        expected_output_shape: the output shape.
        tmp_path: pytest's `tmp_path`.
        setup: optional `fn(model)` run after construction (e.g. load official weights).
        cross_backend: `"next"` or `"previous"` backend of tensorflow -> torch -> jax ->
            tensorflow to load the `.keras` file under in a subprocess, or None. HSSDCT goes
            one way and MSST-Net the other, so the three CI runs cover all six pairs.
        cross_backend_atol, cross_backend_rtol: allowed difference of that backend's output,
            `atol + rtol * max|y|` (float32 rounding of each backend's kernels).
        run_mixed_precision_check: run a `mixed_bfloat16` forward and the dtype round trip.

    Returns the model and its output.
    """
    model = cls(**init_kwargs)
    if setup is not None:
        setup(model)
    expected = run_model(model, input_data)
    _check_shapes(expected.shape, expected_output_shape, f"{cls.__name__} output")
    assert np.all(np.isfinite(expected)), f"{cls.__name__}: non-finite output"

    config = model.get_config()
    assert {"name", "trainable", "dtype"} <= set(config)
    clone = _check_serialization(model, cls)
    assert clone.count_params() == model.count_params()

    path = tmp_path / f"{cls.__name__}_{BACKEND}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls and loaded.get_config() == config
    assert_close(run_model(loaded, input_data), expected, rtol=1e-6, what="reloaded output")

    if cross_backend is not None:
        other = (NEXT_BACKEND if cross_backend == "next" else PREVIOUS_BACKEND)[BACKEND]
        y = _load_under(other, path, model, input_data, tmp_path)
        bound = cross_backend_atol + cross_backend_rtol * np.max(np.abs(expected))
        err = np.max(np.abs(y - expected))
        assert err <= bound, f"{cls.__name__} under {other}: max error {err:.3e} > {bound:.3e}"

    if run_mixed_precision_check:
        mixed = cls(**init_kwargs, dtype=MIXED)
        _check_policy(mixed, MIXED)
        y = run_model(mixed, input_data)
        assert y.shape == expected.shape and np.all(np.isfinite(np.asarray(y, np.float32)))
        mixed_path = tmp_path / f"{cls.__name__}_{BACKEND}_mixed.keras"
        mixed.save(mixed_path)
        assert keras.config.dtype_policy().name == "float32"  # the global default
        reloaded = keras.saving.load_model(mixed_path)
        _check_policy(reloaded, MIXED)
        assert reloaded.get_config()["dtype"] == mixed.get_config()["dtype"]
    return model, expected
