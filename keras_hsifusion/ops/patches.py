"""Non-overlapping convolutions (patch embedding) and transposed convolutions (patch
un-embedding) as one matmul each."""

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


def patch_embed(x, kernel, bias=None):
    """`Conv2D(out, k, strides=k, padding="valid")` of `x` as a space-to-depth and matmul.

    XLA (CPU) computes the kernel gradient of the strided convolution as a slow
    image-sized-window convolution (MSST-Net's patch embeddings at 512x512: forward +
    backward 13x the forward); as a matmul it is one more matmul.
    Rows and columns past the last whole patch are dropped, as the convolution drops them.

    Args:
        x: `(B, H, W, C)` channels-last input with static `H`, `W`.
        kernel: the Keras `Conv2D` kernel, `(kh, kw, C, out)`.
        bias: `(out,)` or None.

    Returns:
        `(B, H // kh, W // kw, out)`.
    """
    kh, kw, cin, out = kernel.shape
    kernel = ops.cast(kernel, x.dtype)
    b = ops.shape(x)[0]
    h, w = x.shape[1] // kh, x.shape[2] // kw
    x = x[:, : h * kh, : w * kw]
    x = ops.transpose(ops.reshape(x, (b, h, kh, w, kw, cin)), (0, 1, 3, 2, 4, 5))
    y = ops.matmul(ops.reshape(x, (b, h, w, kh * kw * cin)), ops.reshape(kernel, (-1, out)))
    return y if bias is None else y + ops.cast(bias, y.dtype)
