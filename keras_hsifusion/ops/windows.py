"""Window partition and reverse for channels-last feature maps (Swin-style)."""

from keras import ops

from keras_hsifusion.ops.padding import pad_amount, reflect_pad, zero_pad


def _pair(window_size):
    if isinstance(window_size, int):
        return window_size, window_size
    return tuple(window_size)


def window_partition(x, window_size):
    """Split `(B, H, W, C)` into `(B * nW, wh * ww, C)` windows, row-major.

    `H` and `W` must be multiples of the window (see `pad_to_windows`).
    """
    wh, ww = _pair(window_size)
    shape = ops.shape(x)
    h, w, c = shape[1], shape[2], x.shape[-1]
    x = ops.reshape(x, (-1, h // wh, wh, w // ww, ww, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, wh * ww, c))


def window_reverse(windows, window_size, height, width):
    """Inverse of `window_partition`: `(B * nW, wh * ww, C)` -> `(B, H, W, C)`."""
    wh, ww = _pair(window_size)
    c = windows.shape[-1]
    x = ops.reshape(windows, (-1, height // wh, width // ww, wh, ww, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, c))


def pad_to_windows(x, window_size, mode="reflect"):
    """Pad `(B, H, W, C)` at the bottom/right so the window divides both sides.

    Returns the padded tensor; crop back with `x[:, :H, :W]`.
    """
    if mode not in ("reflect", "zero"):
        raise ValueError(f"`mode` must be 'reflect' or 'zero'. Received: mode={mode!r}")
    wh, ww = _pair(window_size)
    shape = ops.shape(x)
    ph, pw = pad_amount(shape[1], wh), pad_amount(shape[2], ww)
    if mode == "reflect":
        return reflect_pad(x, ph, pw)
    return zero_pad(x, ph, pw)
