"""Analytic FLOP counting for Keras models, on any backend, without running the model.

`count_flops` re-runs the functional graph of a model symbolically at the requested input
shapes (`compute_output_spec`, no tensor is ever computed) and applies a per-class formula to
every layer. Convention: one multiply-add is 2 FLOPs, as in PyTorch's `FlopCounterMode`,
JAX/XLA's cost analysis and TensorFlow's profiler. `.total` counts convolutions, dense / 1x1
layers and matmul/einsum/attention products (the "MAC" part every counter agrees on); bias
adds, activations, normalisations, softmax, residual adds and resizes are estimated
separately in `.elementwise` (see docs/flops.md for the per-element costs used).

This module is the counter and the helpers a formula is written with. The formulas of Keras'
layers and of the public `keras_hsifusion.layers` are in `layer_flops`; a model's private
layers have theirs in the model's folder (`applications/<model>/flops.py`), handed to the
zoo registry with the model (`ModelSpec.flops`), where the counter finds them.
"""

import math
import warnings

import keras
import numpy as np

from keras_hsifusion.applications.registry import flop_formulas

_FORMULAS = {}


def register_flops(*classes):
    """Registers `fn(layer, input_shapes, output_shapes) -> (flops, elementwise)` for classes.

    `input_shapes` / `output_shapes` are lists of fully defined shape tuples. A formula is
    found through the class hierarchy (the most specific registered class wins), so a
    subclass of `keras.layers.Conv2D` is counted as a convolution unless it registers its
    own formula.

    Examples:
    >>> class Scale(keras.layers.Layer):  # a layer with one weight per channel
    ...     def build(self, input_shape):
    ...         self.w = self.add_weight(shape=(input_shape[-1],), name="w")
    ...     def call(self, x):
    ...         return x * self.w
    >>> @register_flops(Scale)
    ... def _scale(layer, inputs, outputs):
    ...     return 0, num_elements(outputs[0])  # (flops, elementwise): one multiply each
    >>> x = keras.Input((4, 4, 3))
    >>> count_flops(keras.Model(x, Scale()(x)), (1, 4, 4, 3)).elementwise
    48
    """

    def wrap(fn):
        for cls in classes:
            _FORMULAS[cls] = fn
        return fn

    return wrap


def _formula(layer):
    # The zoo's formulas are pushed to its registry by each model folder (`ModelSpec.flops`).
    models = flop_formulas()
    for cls in type(layer).__mro__:
        if cls in _FORMULAS:
            return _FORMULAS[cls]
        if cls in models:
            return models[cls]
    return None


def no_flops(layer, inputs, outputs):
    """The formula of layers that only move data (padding, cropping, reshapes): (0, 0)."""
    return 0, 0


def num_elements(shape):
    """The number of elements of a fully defined shape."""
    return int(math.prod(int(s) for s in shape))


def dense_flops(n_rows, units_in, units_out):
    """FLOPs of `n_rows` vectors through a `units_in -> units_out` linear map."""
    return 2 * n_rows * units_in * units_out


# Per-element costs of elementwise work, used only for the `.elementwise` estimate.
ACTIVATION_COST = {
    "linear": 0,
    "relu": 1,
    "relu6": 2,
    "leaky_relu": 1,
    "elu": 3,
    "selu": 4,
    "gelu": 8,
    "sigmoid": 4,
    "hard_sigmoid": 3,
    "silu": 5,
    "swish": 5,
    "tanh": 4,
    "softplus": 3,
    "softmax": 5,
    "log_softmax": 5,
    "exponential": 1,
}
LAYER_NORM_COST = 7  # mean, subtract, square, mean, rsqrt-scale, gamma, beta
SOFTMAX_COST = 5  # max, subtract, exp, sum, divide
GELU_COST = ACTIVATION_COST["gelu"]
RESIZE_COST = {"nearest": 0, "nearest-exact": 0, "bilinear": 6, "bicubic": 14}


def activation_cost(activation):
    """Per-element cost of a Keras activation (a function or a name; unknown ones cost 1)."""
    if activation is None:
        return 0
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return ACTIVATION_COST.get(str(name).lower(), 1)


class LayerFlops:
    """One row of a `FlopReport`: a layer call, its shapes and counts."""

    def __init__(self, name, class_name, input_shapes, output_shapes, flops, elementwise, params):
        self.name = name
        self.class_name = class_name
        self.input_shapes = input_shapes
        self.output_shapes = output_shapes
        self.flops = int(flops)
        self.elementwise = int(elementwise)
        self.params = int(params)

    def to_dict(self):
        return {
            "name": self.name,
            "class_name": self.class_name,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
            "flops": self.flops,
            "elementwise": self.elementwise,
            "params": self.params,
        }


class FlopReport:
    """Result of `count_flops`: per-layer rows and totals.

    Attributes:
        total: int, FLOPs of convolutions, dense layers and matmul/einsum/attention
            products (2 per multiply-add).
        elementwise: int, estimated FLOPs of everything else (bias adds, activations,
            normalisations, softmax, residual adds, resizes).
        params: int, parameter count of the model.
        layers: list of `LayerFlops` rows, in execution order.
        uncounted: names of layers that hold weights but have no FLOP formula (their
            FLOPs are missing from `total`; register one with `register_flops`).
        input_shapes: the input shapes the count is for.
    """

    def __init__(self, model_name, input_shapes, layers, params, uncounted):
        self.model_name = model_name
        self.input_shapes = input_shapes
        self.layers = layers
        self.params = int(params)
        self.uncounted = list(uncounted)

    @property
    def total(self):
        return int(sum(r.flops for r in self.layers))

    @property
    def elementwise(self):
        return int(sum(r.elementwise for r in self.layers))

    @property
    def by_layer(self):
        out = {}
        for r in self.layers:
            out[r.name] = out.get(r.name, 0) + r.flops
        return out

    def by_class(self):
        out = {}
        for r in self.layers:
            out[r.class_name] = out.get(r.class_name, 0) + r.flops
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def to_dict(self):
        return {
            "model": self.model_name,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "total": self.total,
            "elementwise": self.elementwise,
            "params": self.params,
            "uncounted": self.uncounted,
            "layers": [r.to_dict() for r in self.layers],
        }

    def table(self, min_fraction=0.0):
        """The per-layer table as text; rows below `min_fraction` of the total are merged."""
        total = max(self.total, 1)
        head = f"{'layer':<34} {'class':<24} {'output shape':<22} {'GFLOPs':>10} {'%':>6} "
        head += f"{'elementwise G':>13}"
        lines = [f"FLOPs of {self.model_name} at {self._shapes_text()}", head, "-" * len(head)]
        hidden, hidden_n = [0, 0], 0
        for r in self.layers:
            if r.flops < min_fraction * total and r.flops >= 0:
                hidden[0] += r.flops
                hidden[1] += r.elementwise
                hidden_n += 1
                continue
            shape = "x".join(str(s) for s in r.output_shapes[0]) if r.output_shapes else ""
            lines.append(
                f"{r.name[:34]:<34} {r.class_name[:24]:<24} {shape[:22]:<22} "
                f"{r.flops / 1e9:>10.3f} {100 * r.flops / total:>6.2f} {r.elementwise / 1e9:>13.3f}"
            )
        if hidden_n:
            lines.append(
                f"{f'({hidden_n} smaller layers)':<34} {'':<24} {'':<22} {hidden[0] / 1e9:>10.3f} "
                f"{100 * hidden[0] / total:>6.2f} {hidden[1] / 1e9:>13.3f}"
            )
        lines.append("-" * len(head))
        lines.append(
            f"{'total (2 FLOPs per multiply-add)':<82} {self.total / 1e9:>10.3f} {100.0:>6.2f} "
            f"{self.elementwise / 1e9:>13.3f}"
        )
        lines.append(f"parameters: {self.params:,}")
        if self.uncounted:
            lines.append(f"no FLOP formula (not counted): {', '.join(self.uncounted)}")
        return "\n".join(lines)

    def _shapes_text(self):
        return ", ".join(f"{k}={tuple(v)}" for k, v in self.input_shapes.items())

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (
            f"<FlopReport {self.model_name}: total={self.total:,} FLOPs, "
            f"elementwise={self.elementwise:,}, params={self.params:,}>"
        )


def _is_functional(op):
    return hasattr(op, "_run_through_graph") and hasattr(op, "_nodes_by_depth")


def _shapes(structure):
    out = []
    for t in keras.tree.flatten(structure):
        if hasattr(t, "shape"):
            out.append(tuple(t.shape))
    return out


def _defined(shapes):
    return all(s is not None for shape in shapes for s in shape)


def _output_spec(op, args, kwargs):
    spec = op.compute_output_spec(*args, **kwargs)
    if _defined(_shapes(spec)) or not _defined(_shapes((args, kwargs))):
        return spec
    # `compute_output_shape` left a size unknown (e.g. data-dependent padding): trace `call`
    # symbolically, which every backend does without computing anything.
    return keras.Operation.compute_output_spec(op, *args, **kwargs)


def _count_param(layer):
    try:
        return sum(num_elements(w.shape) for w in layer.weights)
    except Exception:  # noqa: BLE001 - an unbuilt layer has no weights to count
        return 0


def _walk(model, inputs, rows, uncounted, prefix=""):
    def wrap(op):
        def run(*args, **kwargs):
            if _is_functional(op):
                return _walk(op, _flat_args(args, kwargs), rows, uncounted, f"{prefix}{op.name}/")
            out = _output_spec(op, args, kwargs)
            in_shapes, out_shapes = _shapes((args, kwargs)), _shapes(out)
            name = f"{prefix}{op.name}"
            if not _defined(in_shapes + out_shapes):
                raise ValueError(
                    f"count_flops could not resolve the shapes of layer {name!r}: inputs "
                    f"{in_shapes}, outputs {out_shapes}. Pass fully defined `input_shapes`."
                )
            fn = _formula(op)
            if fn is None:
                flops, elementwise = 0, 0
                if getattr(op, "weights", None):
                    uncounted.append(name)
            else:
                flops, elementwise = fn(op, in_shapes, out_shapes)
            params = _count_param(op) if isinstance(op, keras.layers.Layer) else 0
            rows.append(
                LayerFlops(
                    name, type(op).__name__, in_shapes, out_shapes, flops, elementwise, params
                )
            )
            return out

        return run

    return model._run_through_graph(inputs, operation_fn=wrap)


def _flat_args(args, kwargs):
    return keras.tree.flatten((args, kwargs))


def _functional_of(model):
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ValueError(
                "count_flops needs a built Sequential model (give it an `Input`). "
                f"Received: model={model.name!r}"
            )
        return functional
    if not _is_functional(model):
        raise ValueError(
            "count_flops needs a functional model (a graph of layers), such as the zoo's "
            "models, a `keras.Model(inputs, outputs)` or a built `keras.Sequential`. "
            f"Received: model={type(model).__name__}"
        )
    return model


def _normalise_input_shapes(model, input_shapes):
    names = [t.name for t in model.inputs]
    if isinstance(input_shapes, dict):
        given = dict(input_shapes)
        if len(names) == 1 and len(given) == 1 and names[0] not in given:
            given = {names[0]: next(iter(given.values()))}
    else:
        shapes = list(input_shapes)
        if shapes and isinstance(shapes[0], (int, np.integer)):
            shapes = [shapes]
        if len(shapes) != len(names):
            raise ValueError(
                f"The model has {len(names)} inputs {names}; input_shapes lists "
                f"{len(shapes)}. Received: input_shapes={input_shapes!r}"
            )
        given = dict(zip(names, shapes))
    missing = [n for n in names if n not in given]
    if missing:
        raise ValueError(
            f"input_shapes must give a shape for every model input {names}; missing "
            f"{missing}. Received: input_shapes={input_shapes!r}"
        )
    out = {}
    for t in model.inputs:
        shape = tuple(given[t.name])
        ok = len(shape) == len(t.shape) and all(
            isinstance(s, (int, np.integer)) and s >= 1 for s in shape
        )
        ok = ok and all(m is None or m == s for m, s in zip(t.shape, shape))
        if not ok:
            raise ValueError(
                f"Input {t.name!r} has shape {tuple(t.shape)}; input_shapes must give a fully "
                f"defined, compatible shape for it. Received: input_shapes={input_shapes!r}"
            )
        out[t.name] = tuple(int(s) for s in shape)
    return out


def count_flops(model, input_shapes):
    """Counts the FLOPs of one forward pass of a functional Keras model, analytically.

    Works on every backend and at any size without computing anything: the model's graph is
    re-run symbolically at `input_shapes` and each layer is counted by a formula for its
    class (Keras convolutions, dense, einsum-dense, attention and the zoo's layers; add your
    own with `register_flops`). The model may be built inside
    `keras.StatelessScope(initialize_variables=False)`, so even the full-size models take
    seconds.

    Args:
        model: a functional `keras.Model` (the zoo's models are) or a built `Sequential`.
        input_shapes: dict mapping input names to full shapes including the batch, e.g.
            `{"lr_hsi": (1, 64, 64, 172), "hr_msi": (1, 256, 256, 4)}`, or a list of shapes
            in the order of `model.inputs` (or one shape for a single-input model).

    Returns:
        A `FlopReport`: `.total` (int, 2 FLOPs per multiply-add of convolutions, dense and
        matmul/einsum/attention), `.elementwise` (int, estimated), `.params`, `.layers`; it
        prints as a per-layer table.

    Examples:
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3)])
    >>> count_flops(model, (1, 32, 32, 3)).total  # 2 * (30 * 30 * 8) * (3 * 3 * 3)
    388800
    """
    functional = _functional_of(model)
    shapes = _normalise_input_shapes(functional, input_shapes)
    inputs = [keras.KerasTensor(shapes[t.name], dtype=t.dtype) for t in functional.inputs]
    rows, uncounted = [], []
    _walk(functional, inputs, rows, uncounted)
    if uncounted:
        warnings.warn(
            f"count_flops: no FLOP formula for layers with weights {uncounted}; their FLOPs "
            "are not in the total. Register one with keras_hsifusion.profiling.register_flops.",
            stacklevel=2,
        )
    return FlopReport(model.name, shapes, rows, model.count_params(), uncounted)


__all__ = [
    "ACTIVATION_COST",
    "GELU_COST",
    "LAYER_NORM_COST",
    "RESIZE_COST",
    "SOFTMAX_COST",
    "FlopReport",
    "LayerFlops",
    "activation_cost",
    "count_flops",
    "dense_flops",
    "no_flops",
    "num_elements",
    "register_flops",
]
