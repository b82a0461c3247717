"""Non-overlapping transposed convolution (patch un-embedding) as one matmul."""

from keras import ops


def patch_unembed(x, kernel, bias=None):
    """`Conv2DTranspose(out, k, strides=k, padding="valid")` of `x` as a matmul and reshuffle.

    Every input pixel writes its own `k x k` output patch, so the transposed conv is
    `x @ kernel` followed by a depth-to-space. XLA lowers the transposed conv to a dilated
    convolution instead: at MSST-Net's patch 32 that took 2.7 s on JAX (CPU) against 0.05 s
    for the matmul.

    Args:
        x: `(B, h, w, C)` channels-last input.
        kernel: the Keras `Conv2DTranspose` kernel, `(kh, kw, out, C)`.
        bias: `(out,)` or None.

    Returns:
        `(B, h * kh, w * kw, out)`.
    """
    kh, kw, out, cin = kernel.shape
    kernel = ops.cast(kernel, x.dtype)
    shape = ops.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    # (kh*kw*out, C) is the kernel's own memory order: the transpose folds into the matmul.
    y = ops.matmul(x, ops.transpose(ops.reshape(kernel, (kh * kw * out, cin))))
    y = ops.reshape(y, (b, h, w, kh, kw, out))
    if bias is not None:
        y = y + ops.cast(bias, x.dtype)
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (b, h * kh, w * kw, out))
