"""Resizing that reproduces ``torch.nn.functional.interpolate`` on every backend.

Keras' own ``ops.image.resize`` differs from torch for bicubic (Keys a=-0.5 instead of
a=-0.75 on TensorFlow and JAX) and for torch's legacy ``"nearest"``, and on TensorFlow it
cannot take a size computed from a dynamic input shape. These helpers gather the source
pixels explicitly, so they are identical on all backends and work with ``None`` spatial dims.

An integer bilinear or bicubic upsampling of a tensor with static spatial sizes (the global
skip's 200-band upsampling) takes a faster, equivalent path (`_upsample_axis`): polyphase
weights, the same for every block of 8 input samples, applied as one batched matmul per axis
to the blocks gathered with a 2-sample halo. The gather path's 4 gathers, 4 products and 3
sums of output-sized arrays per axis become one small gather and one matmul whose output is
the result: 4-9x faster on CPU (docs/fuse.md), equal to float32 rounding.
"""

import math

import numpy as np
from keras import ops

_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic")
# Input samples per block of the polyphase matmul (8 was fastest on torch, TF and JAX CPU).
_BLOCK = 8
# Halo of a block: the cubic taps of output `s*i + p` lie in `i-2 .. i+2`.
_HALO = 2


def _cubic_weights(t, a):
    """Torch's cubic convolution weights for the taps at offsets -1, 0, 1, 2."""

    def near(d):  # |d| <= 1
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a

    return (far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t))


def _phase_matrix(factor, mode, cubic_a, block):
    """`(factor * block, block + 2 * _HALO)` float32: output `factor * i + p` of a block of
    `block` input samples from the samples `i - 2 .. i + 2` (column `i + 2` is sample `i`).

    Source coordinate of output `factor * i + p`: `i + (p + 0.5) / factor - 0.5`, as torch's
    `align_corners=False`; indices outside the input are clamped by the caller's gather (torch's
    replicated border, which also makes bilinear's clamp of negative coordinates a no-op).
    """
    src = (np.arange(factor) + 0.5) / factor - 0.5
    floor = np.floor(src)
    t = src - floor
    if mode == "bicubic":
        offsets, weights = (-1, 0, 1, 2), _cubic_weights(t, cubic_a)
    else:
        offsets, weights = (0, 1), (1.0 - t, t)
    matrix = np.zeros((factor * block, block + 2 * _HALO))
    for i in range(block):
        for p in range(factor):
            for k, w in zip(offsets, weights):
                matrix[factor * i + p, i + int(floor[p]) + k + _HALO] += w[p]
    return matrix.astype("float32")


def _upsample_axis(x, axis, factor, mode, cubic_a):
    """Integer upsampling of static-size axis 1 or 2 of `(B, H, W, C)` as one batched matmul."""
    n = x.shape[axis]
    block = min(_BLOCK, n)
    blocks = -(-n // block)
    starts = np.arange(blocks)[:, None] * block - _HALO
    idx = np.clip(starts + np.arange(block + 2 * _HALO)[None, :], 0, n - 1).astype("int32")
    taps = ops.take(x, idx, axis=axis)  # (..., blocks, block + 4, ...)
    if axis == 1:
        rows = (-1, block + 2 * _HALO, x.shape[2] * x.shape[3])
    else:
        rows = (-1, block + 2 * _HALO, x.shape[3])
    taps = ops.reshape(taps, rows)
    matrix = ops.convert_to_tensor(_phase_matrix(factor, mode, cubic_a, block), dtype=x.dtype)
    matrix = ops.broadcast_to(matrix[None], (ops.shape(taps)[0],) + tuple(matrix.shape))
    out = ops.matmul(matrix, taps)  # (batch * blocks, factor * block, rest)
    if axis == 1:
        out = ops.reshape(out, (-1, blocks * block * factor, x.shape[2], x.shape[3]))
        return out[:, : n * factor] if blocks * block != n else out
    out = ops.reshape(out, (-1, x.shape[1], blocks * block * factor, x.shape[3]))
    return out[:, :, : n * factor] if blocks * block != n else out


def _integer_factor(scale):
    """`scale` as an int >= 2 when it is one (a float like 4.0 too), else None."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        return None
    return int(scale) if scale >= 2 and float(scale).is_integer() else None


def _out_size(n_in, scale):
    if isinstance(n_in, int):
        return int(math.floor(n_in * scale))
    return ops.cast(ops.floor(ops.cast(n_in, "float64") * scale), "int32")


def _resize_axis(x, axis, n_out, inv_scale, mode, cubic_a):
    n_in = ops.shape(x)[axis]
    bshape = [1] * len(x.shape)
    bshape[axis] = -1
    dst = ops.cast(ops.arange(n_out), "float32")
    if mode == "nearest":
        src = ops.floor(dst * inv_scale)
        idx = ops.minimum(ops.cast(src, "int32"), n_in - 1)
        return ops.take(x, idx, axis=axis)
    if mode == "nearest-exact":
        src = ops.floor((dst + 0.5) * inv_scale)
        idx = ops.minimum(ops.cast(src, "int32"), n_in - 1)
        return ops.take(x, idx, axis=axis)
    src = (dst + 0.5) * inv_scale - 0.5
    if mode == "bilinear":
        src = ops.maximum(src, 0.0)  # torch clamps the source index for linear modes only
        f = ops.floor(src)
        lam = ops.cast(ops.reshape(src - f, bshape), x.dtype)
        i0 = ops.cast(f, "int32")
        i1 = ops.minimum(i0 + 1, n_in - 1)
        return ops.take(x, i0, axis=axis) * (1.0 - lam) + ops.take(x, i1, axis=axis) * lam
    f = ops.floor(src)
    t = src - f
    i0 = ops.cast(f, "int32")
    out = None
    for k, w in zip((-1, 0, 1, 2), _cubic_weights(t, cubic_a)):
        idx = ops.clip(i0 + k, 0, n_in - 1)  # border taps are replicated, as in torch
        term = ops.take(x, idx, axis=axis) * ops.cast(ops.reshape(w, bshape), x.dtype)
        out = term if out is None else out + term
    return out


def interpolate(x, size=None, scale_factor=None, mode="bilinear", cubic_a=-0.75):
    """Resize a channels-last batch exactly as ``torch.nn.functional.interpolate``.

    Matches torch with ``align_corners=False``, ``antialias=False`` and
    ``recompute_scale_factor=None``: with ``scale_factor`` the output size is
    ``floor(H * scale)`` and source coordinates use ``1 / scale``; with ``size`` they use
    ``H_in / H_out``.

    Args:
        x: tensor of shape `(B, H, W, C)`; `H` and `W` may be dynamic.
        size: optional `(H_out, W_out)` (ints or scalar tensors).
        scale_factor: optional float or `(sh, sw)`; exactly one of `size`/`scale_factor`.
        mode: `"nearest"` (torch's legacy nearest), `"nearest-exact"`, `"bilinear"` or
            `"bicubic"`.
        cubic_a: the cubic kernel parameter; torch uses -0.75.

    Returns:
        The resized tensor `(B, H_out, W_out, C)`.
    """
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {_MODES}. Received: mode={mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(
            "Pass exactly one of `size` and `scale_factor`. "
            f"Received: size={size!r}, scale_factor={scale_factor!r}"
        )
    if len(x.shape) != 4:
        raise ValueError(f"`x` must be a 4-D (B, H, W, C) tensor. Received: shape={x.shape}")
    shape = ops.shape(x)
    fast = mode in ("bilinear", "bicubic") and all(isinstance(d, int) for d in x.shape[1:])
    if scale_factor is not None:
        scales = (
            tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
        )
        for s in scales:
            if not s > 0:
                raise ValueError(f"`scale_factor` must be positive. Received: {scale_factor!r}")
        sizes = [_out_size(shape[1 + i], float(scales[i])) for i in range(2)]
        inv = [1.0 / float(s) for s in scales]
        factors = [_integer_factor(s) for s in scales]
    else:
        sizes = list(size)
        inv = []
        for i in range(2):
            n_in, n_out = shape[1 + i], sizes[i]
            if isinstance(n_in, int) and isinstance(n_out, int):
                inv.append(n_in / n_out)
            else:
                inv.append(ops.cast(n_in, "float32") / ops.cast(n_out, "float32"))
        factors = [
            sizes[i] // shape[1 + i]
            if isinstance(shape[1 + i], int)
            and isinstance(sizes[i], int)
            and sizes[i] % shape[1 + i] == 0
            else None
            for i in range(2)
        ]
        factors = [f if f is not None and f >= 2 else None for f in factors]
    fast = fast and None not in factors
    # Fast: the width first, so that the height pass is one matmul over rows `factor` times
    # wider. Otherwise the height first, the order of the gather path's rounding.
    for axis in (2, 1) if fast else (1, 2):
        if fast:
            x = _upsample_axis(x, axis, factors[axis - 1], mode, cubic_a)
        else:
            x = _resize_axis(x, axis, sizes[axis - 1], inv[axis - 1], mode, cubic_a)
    return x


def upsample_matmul_flops(input_shape, output_shape, mode):
    """FLOPs of the matmuls of `interpolate`'s integer-upsampling path (0 when not taken).

    For FLOP counters (`keras_hsifusion.profiling`): two per multiply-add of the polyphase
    matmuls, as torch's FlopCounterMode counts them; the gather path has no matmul.
    """
    b, h, w, c = input_shape
    out_h, out_w = output_shape[1:3]
    if mode not in ("bilinear", "bicubic") or not all(
        isinstance(d, int) for d in (h, w, c, out_h, out_w)
    ):
        return 0
    if out_h % h or out_w % w or out_h // h < 2 or out_w // w < 2:
        return 0
    total, width = 0, w
    for n, factor, rest, batch in ((w, out_w // w, c, b * h), (h, out_h // h, None, b)):
        block = min(_BLOCK, n)
        rest = rest if rest is not None else width * c
        total += 2 * batch * -(-n // block) * factor * block * (block + 2 * _HALO) * rest
        width = out_w
    return total


def upsample_nearest(x, factor):
    """Integer nearest-neighbour upsampling (``nn.Upsample(scale_factor=factor)``)."""
    if factor == 1:
        return x
    x = ops.repeat(x, factor, axis=1)
    return ops.repeat(x, factor, axis=2)
