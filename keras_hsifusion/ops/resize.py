"""Resizing that reproduces ``torch.nn.functional.interpolate`` on every backend.

Keras' own ``ops.image.resize`` differs from torch for bicubic (Keys a=-0.5 instead of
a=-0.75 on TensorFlow and JAX) and for torch's legacy ``"nearest"``, and on TensorFlow it
cannot take a size computed from a dynamic input shape. These helpers gather the source
pixels explicitly, so they are identical on all backends and work with ``None`` spatial dims.
"""

import math

from keras import ops

_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic")


def _cubic_weights(t, a):
    """Torch's cubic convolution weights for the taps at offsets -1, 0, 1, 2."""

    def near(d):  # |d| <= 1
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a

    return (far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t))


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
    if scale_factor is not None:
        scales = (
            tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
        )
        for s in scales:
            if not s > 0:
                raise ValueError(f"`scale_factor` must be positive. Received: {scale_factor!r}")
        sizes = [_out_size(shape[1 + i], float(scales[i])) for i in range(2)]
        inv = [1.0 / float(s) for s in scales]
    else:
        sizes = list(size)
        inv = []
        for i in range(2):
            n_in, n_out = shape[1 + i], sizes[i]
            if isinstance(n_in, int) and isinstance(n_out, int):
                inv.append(n_in / n_out)
            else:
                inv.append(ops.cast(n_in, "float32") / ops.cast(n_out, "float32"))
    for axis in (1, 2):
        x = _resize_axis(x, axis, sizes[axis - 1], inv[axis - 1], mode, cubic_a)
    return x


def upsample_nearest(x, factor):
    """Integer nearest-neighbour upsampling (``nn.Upsample(scale_factor=factor)``)."""
    if factor == 1:
        return x
    x = ops.repeat(x, factor, axis=1)
    return ops.repeat(x, factor, axis=2)
