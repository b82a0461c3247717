"""FLOP formulas of Keras' layers and of the public `keras_hsifusion.layers`.

Imported by `keras_hsifusion.profiling`, which registers them with `register_flops`. The zoo's
layers are counted from their attributes; SSCL and the window block count their reflect /
zero-padded windows. Per-element costs of the `.elementwise` estimate: docs/flops.md.
"""

import math

import keras

from keras_hsifusion.layers import (
    HDRTB,
    SSCL,
    BandEmbedding,
    DenseWindowBlock,
    GlobalSkip,
    HierarchicalTransformerBlock,
    Interpolate,
    PatchEmbedding,
    PositionEmbedding2D,
    ResidualGate,
    SpaT,
    SpeT,
    WindowTransformerBlock,
)
from keras_hsifusion.ops.psf import psf_taps
from keras_hsifusion.ops.resize import upsample_matmul_flops
from keras_hsifusion.profiling.flops import (
    GELU_COST,
    LAYER_NORM_COST,
    RESIZE_COST,
    SOFTMAX_COST,
    activation_cost,
    dense_flops,
    no_flops,
    num_elements,
    register_flops,
)


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _spatial(shape, layer):
    return shape[1:-1] if _channels_last(layer) else shape[2:]


def _channels(shape, layer):
    return shape[-1] if _channels_last(layer) else shape[1]


def _bias_and_activation(layer, out):
    return num_elements(out) * (int(layer.use_bias) + activation_cost(layer.activation))


# --------------------------------------------------------------------------------------------
# Keras layers.


@register_flops(keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
def _conv(layer, inputs, outputs):
    out = outputs[0]
    cin = _channels(inputs[0], layer)
    flops = 2 * num_elements(out) * math.prod(layer.kernel_size) * (cin // layer.groups)
    return flops, _bias_and_activation(layer, out)


@register_flops(keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
def _depthwise(layer, inputs, outputs):
    out = outputs[0]
    flops = 2 * num_elements(out) * math.prod(layer.kernel_size)
    return flops, _bias_and_activation(layer, out)


@register_flops(keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
def _separable(layer, inputs, outputs):
    out = outputs[0]
    cin = _channels(inputs[0], layer)
    positions = out[0] * math.prod(_spatial(out, layer))
    mid = cin * layer.depth_multiplier
    flops = 2 * positions * mid * math.prod(layer.kernel_size)
    flops += 2 * positions * mid * layer.filters
    return flops, _bias_and_activation(layer, out)


@register_flops(
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose
)
def _conv_transpose(layer, inputs, outputs):
    x, out = inputs[0], outputs[0]
    cin = _channels(x, layer)
    positions = x[0] * math.prod(_spatial(x, layer))
    flops = 2 * positions * cin * layer.filters * math.prod(layer.kernel_size)
    return flops, _bias_and_activation(layer, out)


@register_flops(keras.layers.Dense)
def _dense(layer, inputs, outputs):
    x = inputs[0]
    flops = dense_flops(num_elements(x[:-1]), x[-1], layer.units)
    return flops, _bias_and_activation(layer, outputs[0])


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
            sizes["..."] = max(sizes.get("...", 1), num_elements(ellipsis))
        else:
            for c, s in zip(spec, shape):
                sizes[c] = s
    flops = 2 * math.prod(int(v) for v in sizes.values())
    elementwise = num_elements(outputs[0]) * (
        int(layer.bias is not None) + activation_cost(layer.activation)
    )
    return flops, elementwise


@register_flops(keras.layers.MultiHeadAttention)
def _mha(layer, inputs, outputs):
    q = inputs[0]
    v = inputs[1] if len(inputs) > 1 else q
    k = inputs[2] if len(inputs) > 2 and len(inputs[2]) == len(q) else v
    heads, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim or kd
    bq, tq, tk = q[0], num_elements(q[1:-1]), num_elements(v[1:-1])
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
    cost = activation_cost(act) if act is not None else 1
    return 0, num_elements(outputs[0]) * cost


@register_flops(keras.layers.Softmax)
def _softmax(layer, inputs, outputs):
    return 0, num_elements(outputs[0]) * SOFTMAX_COST


@register_flops(
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Average,
)
def _merge(layer, inputs, outputs):
    return 0, num_elements(outputs[0]) * (len(inputs) - 1 + isinstance(layer, keras.layers.Average))


@register_flops(keras.layers.LayerNormalization, keras.layers.GroupNormalization)
def _norm(layer, inputs, outputs):
    return 0, num_elements(outputs[0]) * LAYER_NORM_COST


@register_flops(keras.layers.BatchNormalization)
def _batch_norm(layer, inputs, outputs):
    return 0, num_elements(outputs[0]) * 2  # inference: a folded scale and shift


@register_flops(keras.layers.UpSampling2D, keras.layers.Resizing)
def _upsample(layer, inputs, outputs):
    mode = getattr(layer, "interpolation", "nearest")
    return 0, num_elements(outputs[0]) * RESIZE_COST.get(mode, 6)


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
)(no_flops)


@register_flops(keras.layers.GlobalAveragePooling2D, keras.layers.AveragePooling2D)
def _pool(layer, inputs, outputs):
    return 0, num_elements(inputs[0])


# --------------------------------------------------------------------------------------------
# keras_hsifusion.layers.


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
    flops = dense_flops(n_pad, c, hidden)  # dual feature extractor, 1x1
    flops += 2 * n_pad * hidden * hidden * 9  # its 3x3 conv
    flops += dense_flops(n_pad, hidden, c) + dense_flops(n_pad, c, c)  # 1x1 and gate
    flops += 2 * n_pad * half  # values reduced to the base window (a linear over r*r)
    flops += 2 * 2 * windows * length * bs * bs * half  # spatial correlation and product
    flops += 2 * 2 * windows * half * half * length  # channel correlation and product
    flops += dense_flops(n, c, c)  # output projection
    positions, pos_dim = (2 * ws - 1) ** 2, c // 16  # dynamic position-bias MLP
    flops += 2 * positions * (2 * pos_dim + 2 * pos_dim * pos_dim + pos_dim * nh)
    elementwise = n_pad * (3 * hidden + 2 * c)  # biases, LeakyReLUs, gate
    elementwise += windows * nh * length * bs * bs * 2 + windows * half * half  # scale, bias
    elementwise += n * c + positions * pos_dim * 3 * (LAYER_NORM_COST + 1)
    elementwise += length * bs * bs * nh * r * r  # mean over the r*r sub-positions
    return flops, elementwise


def _mlp(n, c, hidden, act_cost=GELU_COST):
    return dense_flops(n, c, hidden) + dense_flops(n, hidden, c), n * (hidden * (1 + act_cost) + c)


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
    flops = dense_flops(n_pad, c, 3 * c) + dense_flops(n_pad, c, c)  # qkv, proj
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
        flops += f + dense_flops(n, channels, adjust.units)
        elementwise += e + n * adjust.units * (1 + int(activations[k]))
    return flops, elementwise + 2 * n * c


register_flops(SSCL)(lambda layer, i, o: _sscl(layer, i[0]))
register_flops(HierarchicalTransformerBlock)(lambda layer, i, o: _hier_block(layer, i[0]))
register_flops(WindowTransformerBlock)(lambda layer, i, o: _window_block(layer, i[0]))


@register_flops(HDRTB)
def _hdrtb(layer, inputs, outputs):
    return _dense_block(layer, inputs[0], _hier_block, (True, True, True, True))


@register_flops(DenseWindowBlock)
def _dwb(layer, inputs, outputs):
    return _dense_block(layer, inputs[0], _window_block, (True, True, True, False))


def resize_cost(mode, input_shape, output_shape):
    """`(flops, elementwise)` of `ops.interpolate`: the polyphase matmuls of its integer
    upsampling path, or the gather path's weighted taps (`RESIZE_COST` per output element)."""
    flops = upsample_matmul_flops(tuple(input_shape), tuple(output_shape), mode)
    if flops:
        return flops, 0
    return 0, num_elements(output_shape) * RESIZE_COST.get(mode, 6)


@register_flops(Interpolate)
def _resize(layer, inputs, outputs):
    return resize_cost(layer.mode, inputs[0], outputs[0])


@register_flops(BandEmbedding)
def _band_embedding(layer, inputs, outputs):
    x, out = inputs[0], outputs[0]
    flops = dense_flops(num_elements(x[:-1]), x[-1], layer.embed_dim)
    return flops, num_elements(out) * (2 + LAYER_NORM_COST)


@register_flops(PatchEmbedding)
def _patch_embedding(layer, inputs, outputs):
    x, out = inputs[0], outputs[0]
    flops = 2 * num_elements(out) * layer.patch_size**2 * x[-1]
    return flops, num_elements(out) * (2 + LAYER_NORM_COST)


@register_flops(PositionEmbedding2D)
def _position(layer, inputs, outputs):
    return 0, num_elements(outputs[0]) * (1 + RESIZE_COST["bilinear"])


def _token(layer, shape, attention):
    b, h, w, d = shape
    n = b * h * w
    flops, elementwise = 0, 0
    for _ in range(layer.num_layers):
        flops += dense_flops(n, d, 3 * d) + dense_flops(n, d, d)  # qkv, proj
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


@register_flops(GlobalSkip)
def _global_skip(layer, inputs, outputs):
    (b, h, w, bands), hr, out = inputs[0], inputs[1], outputs[0]
    flops, elementwise = resize_cost("bicubic", inputs[0], out)  # the upsampled LR-HSI
    if layer.mode == "bicubic":
        return flops, elementwise
    c, n_lr, n_hr = hr[-1], b * h * w, b * hr[1] * hr[2]
    if layer.mode in ("poly_detail_injection", "hysime_detail_injection"):
        elementwise += n_hr * c * (c + 1) // 2  # the MSI's pairwise products
        c += c * (c + 1) // 2  # regressors: the MSI bands and their products
    # the high-pass detail: the degraded features upsampled back, minus the features
    up_flops, up_elementwise = resize_cost("bicubic", (b, h, w, c), (b, hr[1], hr[2], c))
    flops += up_flops
    elementwise += up_elementwise + n_hr * c
    if layer.mode == "hysime_detail_injection":
        # The band correlation and the LR-HSI's projection (matmuls); the eigendecompositions
        # (one per band group, and one of the signal correlation) are estimated as 9 m^3.
        flops += dense_flops(n_lr, bands, bands) * 2
        groups = max(1, -(-2 * bands // (h * w)))
        elementwise += b * (9 * bands**3 // groups**2 + 9 * bands**3 + 6 * bands**3)
    taps = len(psf_taps(layer.scale, layer.psf_fwhm)[0])
    elementwise += 2 * taps * (b * h * hr[2] + b * h * w) * c  # separable PSF: rows, columns
    elementwise += 2 * n_lr * (c + bands)  # centring
    # What torch's FlopCounterMode counts: the normal equations' two matmuls and the detail
    # injection (an einsum). The c x c solve (LU and substitution) is estimated separately.
    flops += dense_flops(n_lr, c, c) + dense_flops(n_lr, c, bands) + dense_flops(n_hr, c, bands)
    elementwise += b * (2 * c**3 // 3 + 2 * c * c * bands + c) + num_elements(out)
    return flops, elementwise


@register_flops(ResidualGate)
def _residual_gate(layer, inputs, outputs):
    return 0, 2 * num_elements(outputs[0])  # base + gate * residual


__all__ = []
