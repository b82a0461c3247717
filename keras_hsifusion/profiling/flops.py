"""Analytic FLOP counting for Keras models, on any backend, without running the model.

`count_flops` re-runs the functional graph of a model symbolically at the requested input
shapes (`compute_output_spec`, no tensor is ever computed) and applies a per-class formula to
every layer. Convention: one multiply-add is 2 FLOPs, as in PyTorch's `FlopCounterMode`,
JAX/XLA's cost analysis and TensorFlow's profiler. `.total` counts convolutions, dense / 1x1
layers and matmul/einsum/attention products (the "MAC" part every counter agrees on); bias
adds, activations, normalisations, softmax, residual adds and resizes are estimated
separately in `.elementwise` (see docs/flops.md for the per-element costs used).
"""

import math
import warnings

import keras
import numpy as np

_FORMULAS = {}


def register_flops(*classes):
    """Registers `fn(layer, input_shapes, output_shapes) -> (flops, elementwise)` for classes.

    `input_shapes` / `output_shapes` are lists of fully defined shape tuples. A formula is
    found through the class hierarchy (the most specific registered class wins), so a
    subclass of `keras.layers.Conv2D` is counted as a convolution unless it registers its
    own formula.

    Examples:
    >>> @register_flops(MyLayer)
    ... def _my_layer(layer, inputs, outputs):
    ...     return 2 * math.prod(inputs[0]) * layer.units, 0
    """

    def wrap(fn):
        for cls in classes:
            _FORMULAS[cls] = fn
        return fn

    return wrap


def _formula(layer):
    for cls in type(layer).__mro__:
        if cls in _FORMULAS:
            return _FORMULAS[cls]
    return None


def _n(shape):
    return int(math.prod(int(s) for s in shape))


# Per-element costs of elementwise work, used only for the `.elementwise` estimate.
_ACTIVATION_COST = {
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
GELU_COST = _ACTIVATION_COST["gelu"]
_RESIZE_COST = {"nearest": 0, "nearest-exact": 0, "bilinear": 6, "bicubic": 14}


def _activation_cost(activation):
    if activation is None:
        return 0
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return _ACTIVATION_COST.get(str(name).lower(), 1)


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _spatial(shape, layer):
    return shape[1:-1] if _channels_last(layer) else shape[2:]


def _channels(shape, layer):
    return shape[-1] if _channels_last(layer) else shape[1]


def _dense_flops(n_rows, units_in, units_out):
    return 2 * n_rows * units_in * units_out


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
    from keras.src.ops.operation import Operation

    return Operation.compute_output_spec(op, *args, **kwargs)


def _count_param(layer):
    try:
        return sum(_n(w.shape) for w in layer.weights)
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
    >>> count_flops(model, {"input": (1, 32, 32, 3)}).total
    387072
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


# --------------------------------------------------------------------------------------------
# Keras layers.


@register_flops(keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
def _conv(layer, inputs, outputs):
    out = outputs[0]
    cin = _channels(inputs[0], layer)
    flops = 2 * _n(out) * math.prod(layer.kernel_size) * (cin // layer.groups)
    elementwise = _n(out) * (int(layer.use_bias) + _activation_cost(layer.activation))
    return flops, elementwise


@register_flops(keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
def _depthwise(layer, inputs, outputs):
    out = outputs[0]
    flops = 2 * _n(out) * math.prod(layer.kernel_size)
    elementwise = _n(out) * (int(layer.use_bias) + _activation_cost(layer.activation))
    return flops, elementwise


@register_flops(keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
def _separable(layer, inputs, outputs):
    out = outputs[0]
    cin = _channels(inputs[0], layer)
    positions = out[0] * math.prod(_spatial(out, layer))
    mid = cin * layer.depth_multiplier
    flops = 2 * positions * mid * math.prod(layer.kernel_size)
    flops += 2 * positions * mid * layer.filters
    elementwise = _n(out) * (int(layer.use_bias) + _activation_cost(layer.activation))
    return flops, elementwise


@register_flops(
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose
)
def _conv_transpose(layer, inputs, outputs):
    x, out = inputs[0], outputs[0]
    cin = _channels(x, layer)
    positions = x[0] * math.prod(_spatial(x, layer))
    flops = 2 * positions * cin * layer.filters * math.prod(layer.kernel_size)
    elementwise = _n(out) * (int(layer.use_bias) + _activation_cost(layer.activation))
    return flops, elementwise


@register_flops(keras.layers.Dense)
def _dense(layer, inputs, outputs):
    x = inputs[0]
    flops = _dense_flops(_n(x[:-1]), x[-1], layer.units)
    elementwise = _n(outputs[0]) * (int(layer.use_bias) + _activation_cost(layer.activation))
    return flops, elementwise


@register_flops(keras.layers.EinsumDense)
def _einsum_dense(layer, inputs, outputs):
    lhs, out_spec = layer.equation.split("->")
    x_spec, k_spec = lhs.split(",")
    sizes = {}
    for spec, shape in ((x_spec, inputs[0]), (k_spec, layer.kernel.shape), (out_spec, outputs[0])):
        spec = spec.strip()
        if "..." in spec:
            head, tail = spec.split("...")
            for c, s in zip(head, shape[: len(head)]):
                sizes[c] = s
            for c, s in zip(tail, shape[len(shape) - len(tail) :] if tail else ()):
                sizes[c] = s
            ellipsis = shape[len(head) : len(shape) - len(tail)]
            sizes["..."] = max(sizes.get("...", 1), _n(ellipsis))
        else:
            for c, s in zip(spec, shape):
                sizes[c] = s
    flops = 2 * math.prod(int(v) for v in sizes.values())
    elementwise = _n(outputs[0]) * (
        int(layer.bias is not None) + _activation_cost(layer.activation)
    )
    return flops, elementwise


@register_flops(keras.layers.MultiHeadAttention)
def _mha(layer, inputs, outputs):
    q = inputs[0]
    v = inputs[1] if len(inputs) > 1 else q
    k = inputs[2] if len(inputs) > 2 and len(inputs[2]) == len(q) else v
    heads, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim or kd
    bq, tq, tk = q[0], _n(q[1:-1]), _n(v[1:-1])
    flops = 2 * bq * tq * q[-1] * heads * kd  # query projection
    flops += 2 * bq * tk * k[-1] * heads * kd  # key projection
    flops += 2 * bq * tk * v[-1] * heads * vd  # value projection
    flops += 2 * bq * heads * tq * tk * (kd + vd)  # scores and weighted sum
    flops += 2 * bq * tq * heads * vd * outputs[0][-1]  # output projection
    elementwise = bq * heads * tq * tk * (SOFTMAX_COST + 1)
    return flops, elementwise


@register_flops(keras.layers.Attention)
def _attention(layer, inputs, outputs):
    q, v = inputs[0], inputs[1]
    flops = 2 * q[0] * q[1] * v[1] * (q[-1] + v[-1])
    return flops, q[0] * q[1] * v[1] * (SOFTMAX_COST + 1)


@register_flops(keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU)
def _activation(layer, inputs, outputs):
    act = getattr(layer, "activation", None)
    cost = _activation_cost(act) if act is not None else 1
    return 0, _n(outputs[0]) * cost


@register_flops(keras.layers.Softmax)
def _softmax(layer, inputs, outputs):
    return 0, _n(outputs[0]) * SOFTMAX_COST


@register_flops(
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Average,
)
def _merge(layer, inputs, outputs):
    return 0, _n(outputs[0]) * (len(inputs) - 1 + isinstance(layer, keras.layers.Average))


@register_flops(keras.layers.LayerNormalization, keras.layers.GroupNormalization)
def _norm(layer, inputs, outputs):
    return 0, _n(outputs[0]) * LAYER_NORM_COST


@register_flops(keras.layers.BatchNormalization)
def _batch_norm(layer, inputs, outputs):
    return 0, _n(outputs[0]) * 2  # inference: a folded scale and shift


@register_flops(keras.layers.UpSampling2D, keras.layers.Resizing)
def _upsample(layer, inputs, outputs):
    mode = getattr(layer, "interpolation", "nearest")
    return 0, _n(outputs[0]) * _RESIZE_COST.get(mode, 6)


def _free(layer, inputs, outputs):
    return 0, 0


register_flops(
    keras.layers.Concatenate,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.Flatten,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
    keras.layers.Dropout,
    keras.layers.Identity,
    keras.layers.InputLayer,
)(_free)


@register_flops(keras.layers.GlobalAveragePooling2D, keras.layers.AveragePooling2D)
def _pool(layer, inputs, outputs):
    return 0, _n(inputs[0])


# --------------------------------------------------------------------------------------------
# The zoo's layers.


def _window_padded(shape, ws):
    b, h, w, c = shape
    return b * (-(-h // ws) * ws) * (-(-w // ws) * ws), c


def _sscl(layer, shape):
    b, h, w, c = shape
    n = b * h * w
    ws, bs, r, nh = layer.window_size, layer._base, layer._ratio, layer.num_heads
    n_pad, _ = _window_padded(shape, ws)
    hidden, half, length = c // 5, c // 2, ws * ws
    windows = n_pad // length
    flops = _dense_flops(n_pad, c, hidden)  # dual feature extractor, 1x1
    flops += 2 * n_pad * hidden * hidden * 9  # its 3x3 conv
    flops += _dense_flops(n_pad, hidden, c) + _dense_flops(n_pad, c, c)  # 1x1 and gate
    flops += 2 * n_pad * half  # values reduced to the base window (a linear over r*r)
    flops += 2 * 2 * windows * length * bs * bs * half  # spatial correlation and product
    flops += 2 * 2 * windows * half * half * length  # channel correlation and product
    flops += _dense_flops(n, c, c)  # output projection
    positions, pos_dim = (2 * ws - 1) ** 2, c // 16  # dynamic position-bias MLP
    flops += 2 * positions * (2 * pos_dim + 2 * pos_dim * pos_dim + pos_dim * nh)
    elementwise = n_pad * (3 * hidden + 2 * c)  # biases, LeakyReLUs, gate
    elementwise += windows * nh * length * bs * bs * 2 + windows * half * half  # scale, bias
    elementwise += n * c + positions * pos_dim * 3 * (LAYER_NORM_COST + 1)
    elementwise += length * bs * bs * nh * r * r  # mean over the r*r sub-positions
    return flops, elementwise


def _mlp(n, c, hidden, act_cost=GELU_COST):
    return _dense_flops(n, c, hidden) + _dense_flops(n, hidden, c), n * (
        hidden * (1 + act_cost) + c
    )


def _hier_block(layer, shape):
    b, h, w, c = shape
    n = b * h * w
    flops, elementwise = _sscl(layer.correlation, shape)
    mlp_f, mlp_e = _mlp(n, c, int(c * layer.mlp_ratio))
    return flops + mlp_f, elementwise + mlp_e + n * c * 2 * (LAYER_NORM_COST + 1)


def _window_block(layer, shape):
    b, h, w, c = shape
    n = b * h * w
    ws, nh = layer.window_size, layer.num_heads
    n_pad, _ = _window_padded(shape, ws)
    length = ws * ws
    flops = _dense_flops(n_pad, c, 3 * c) + _dense_flops(n_pad, c, c)  # qkv, proj
    flops += 2 * 2 * n_pad * length * c  # q @ k^T and attn @ v over all heads
    mlp_f, mlp_e = _mlp(n, c, int(c * layer.mlp_ratio))
    elementwise = n_pad * 4 * c + n_pad * nh * length * (SOFTMAX_COST + 2)
    elementwise += mlp_e + n * c * (2 * LAYER_NORM_COST + 4)
    return flops + mlp_f, elementwise


def _dense_block(layer, shape, block_fn, activations):
    b, h, w, c = shape
    n = b * h * w
    flops, elementwise = 0, 0
    for k, (block, adjust) in enumerate(zip(layer.blocks, layer.adjusts)):
        channels = c + k * layer.gc
        f, e = block_fn(block, (b, h, w, channels))
        flops += f + _dense_flops(n, channels, adjust.units)
        elementwise += e + n * adjust.units * (1 + int(activations[k]))
    return flops, elementwise + 2 * n * c


def _register_zoo():
    from keras_hsifusion.applications.msst_net import _layers as msst_layers
    from keras_hsifusion.layers.dense_swin import DenseWindowBlock, WindowTransformerBlock
    from keras_hsifusion.layers.embeddings import BandEmbedding, PatchEmbedding, PositionEmbedding2D
    from keras_hsifusion.layers.hdrtb import HDRTB, HierarchicalTransformerBlock
    from keras_hsifusion.layers.interpolate import Interpolate
    from keras_hsifusion.layers.spat import SpaT
    from keras_hsifusion.layers.spet import SpeT
    from keras_hsifusion.layers.sscl import SSCL

    register_flops(SSCL)(lambda layer, i, o: _sscl(layer, i[0]))
    register_flops(HierarchicalTransformerBlock)(lambda layer, i, o: _hier_block(layer, i[0]))
    register_flops(WindowTransformerBlock)(lambda layer, i, o: _window_block(layer, i[0]))

    @register_flops(HDRTB)
    def _hdrtb(layer, inputs, outputs):
        return _dense_block(layer, inputs[0], _hier_block, (True, True, True, True))

    @register_flops(DenseWindowBlock)
    def _dwb(layer, inputs, outputs):
        return _dense_block(layer, inputs[0], _window_block, (True, True, True, False))

    @register_flops(Interpolate, msst_layers.TorchResize)
    def _resize(layer, inputs, outputs):
        return 0, _n(outputs[0]) * _RESIZE_COST.get(layer.mode, 6)

    @register_flops(BandEmbedding)
    def _band_embedding(layer, inputs, outputs):
        x, out = inputs[0], outputs[0]
        flops = _dense_flops(_n(x[:-1]), x[-1], layer.embed_dim)
        return flops, _n(out) * (2 + LAYER_NORM_COST)

    @register_flops(PatchEmbedding)
    def _patch_embedding(layer, inputs, outputs):
        x, out = inputs[0], outputs[0]
        flops = 2 * _n(out) * layer.patch_size**2 * x[-1]
        return flops, _n(out) * (2 + LAYER_NORM_COST)

    @register_flops(PositionEmbedding2D)
    def _position(layer, inputs, outputs):
        return 0, _n(outputs[0]) * (1 + _RESIZE_COST["bilinear"])

    def _token(layer, shape, attention):
        b, h, w, d = shape
        n = b * h * w
        flops, elementwise = 0, 0
        for _ in range(layer.num_layers):
            flops += _dense_flops(n, d, 3 * d) + _dense_flops(n, d, d)  # qkv, proj
            f, e = attention(b, h * w, d)
            mlp_f, mlp_e = _mlp(n, d, layer.mlp_ratio * d)
            flops += f + mlp_f
            elementwise += e + mlp_e + n * (4 * d + 2 * LAYER_NORM_COST * d)
        return flops, elementwise

    @register_flops(SpeT)
    def _spet(layer, inputs, outputs):
        def attention(b, n, d):  # (D x D) per head over its n / heads pixels, both products
            return 2 * 2 * b * n * d * d, b * layer.heads * d * d * (SOFTMAX_COST + 1)

        return _token(layer, inputs[0], attention)

    @register_flops(SpaT)
    def _spat(layer, inputs, outputs):
        def attention(b, n, d):  # (n x n) per head of width d / heads, both products
            return 2 * 2 * b * n * n * d, b * layer.heads * n * n * (SOFTMAX_COST + 1)

        return _token(layer, inputs[0], attention)

    @register_flops(msst_layers.BranchWeights)
    def _branch_weights(layer, inputs, outputs):
        return 0, _n(outputs[0]) * (2 * len(inputs) - 1)

    register_flops(msst_layers.MSSTPad, msst_layers.MSSTCrop, msst_layers.PixelShuffle)(_free)


_register_zoo()


__all__ = ["FlopReport", "LayerFlops", "count_flops", "register_flops"]
