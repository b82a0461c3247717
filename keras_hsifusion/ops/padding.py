"""Padding helpers that work with dynamic spatial sizes on every backend."""

from keras import ops


def _reflect_indices(n, total):
    """Indices of a reflect padding of an axis of length ``n`` to length ``total``.

    For pads smaller than ``n`` this is exactly torch's ``"reflect"`` mode. Larger pads (where
    torch raises) keep reflecting back and forth, like ``numpy.pad(mode="reflect")``.
    """
    i = ops.arange(total)
    period = ops.maximum(2 * n - 2, 1)
    m = ops.mod(i, period)
    return ops.where(m < n, m, period - m)


def reflect_pad(x, pad_h, pad_w):
    """Reflect-pad a `(B, H, W, C)` tensor at the bottom and right.

    `pad_h` and `pad_w` may be ints or scalar tensors (dynamic shapes).
    """
    shape = ops.shape(x)
    h, w = shape[1], shape[2]
    if not (isinstance(pad_h, int) and pad_h == 0):
        x = ops.take(x, _reflect_indices(h, h + pad_h), axis=1)
    if not (isinstance(pad_w, int) and pad_w == 0):
        x = ops.take(x, _reflect_indices(w, w + pad_w), axis=2)
    return x


def zero_pad(x, pad_h, pad_w):
    """Zero-pad a `(B, H, W, C)` tensor at the bottom and right.

    Concatenates zeros instead of calling ``ops.pad`` so that dynamic pad sizes work on
    TensorFlow and ``torch.compile`` does not recompile on every call.
    """
    shape = ops.shape(x)
    b, h, w, c = shape[0], shape[1], shape[2], x.shape[-1]
    x = ops.concatenate([x, ops.zeros((b, pad_h, w, c), dtype=x.dtype)], axis=1)
    return ops.concatenate([x, ops.zeros((b, h + pad_h, pad_w, c), dtype=x.dtype)], axis=2)


def pad_amount(n, multiple):
    """Smallest ``p >= 0`` with ``(n + p) % multiple == 0``; ``n`` may be a tensor."""
    return (multiple - n % multiple) % multiple
