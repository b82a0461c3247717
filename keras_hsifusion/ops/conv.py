"""Stride-1 2-D convolution whose kernel gradient is one matmul per kernel tap (XLA on CPU).

XLA's CPU compiler runs a convolution's forward and input gradient through its fast
convolution kernels, but emits the kernel (filter) gradient, a convolution with the batch
and spatial axes contracted, as one convolution with an image-sized window that runs at ~10
GFLOP/s (5-23x the forward's time); it made most of MSST-Net's JAX training step
(docs/benchmarks.md, "What was done", item 5). `conv2d` here has the same forward and input
gradient, and computes the kernel gradient as one `dy^T @ shifted(x)` matmul per kernel tap,
which XLA hands to its matmul kernel (1.3x faster at 128^2, 1.7x at 512^2, 2.9-3.7x at 256^2
with 96-192 channels: benchmarks/results/jax_conv_kernel_gradient.md). Written in
`keras.ops` with `keras.ops.custom_gradient`; `keras_hsifusion.layers.Conv2D` uses it on JAX
CPU only (other backends and devices have fast kernel-gradient kernels of their own).
"""

import keras
from keras import ops


def _pad_amounts(kernel_shape, dilation, padding):
    """`((top, bottom), (left, right))` of a stride-1 convolution (odd kernels for "same")."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    return tuple((d * (k - 1) // 2,) * 2 for k, d in zip(kernel_shape[:2], dilation))


def conv2d(x, kernel, dilation=(1, 1), padding="same"):
    """`keras.ops.conv(x, kernel, 1, padding, dilation_rate=dilation)`, channels-last, with
    the kernel gradient computed as one matmul per kernel tap.

    Args:
        x: `(B, H, W, C)` with static spatial sizes.
        kernel: `(kh, kw, C, O)`; odd `kh`, `kw` when `padding="same"`.
        dilation: `(dh, dw)`.
        padding: `"same"` or `"valid"`.

    Returns:
        `(B, Ho, Wo, O)`, equal to `keras.ops.conv` (the gradients too, to float rounding).
    """
    dilation = tuple(int(d) for d in dilation)
    if keras.backend.is_keras_tensor(x) or keras.backend.is_keras_tensor(kernel):
        return ops.conv(x, kernel, 1, padding, dilation_rate=dilation)  # shape inference
    dh, dw = dilation
    kh, kw, c, o = kernel.shape
    pads = _pad_amounts(kernel.shape, dilation, padding)

    @ops.custom_gradient
    def _conv(x, kernel):
        y = ops.conv(x, kernel, 1, padding, dilation_rate=dilation)

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            # Input gradient: the transposed convolution, a stride-1 convolution of dy with
            # the flipped kernel (channels swapped) and the complementary padding.
            flipped = ops.transpose(ops.flip(ops.flip(kernel, 0), 1), (0, 1, 3, 2))
            full = [
                (dd * (k - 1) - p0, dd * (k - 1) - p1)
                for k, dd, (p0, p1) in zip((kh, kw), dilation, pads)
            ]
            dy_padded = ops.pad(dy, ((0, 0), *full, (0, 0)))
            dx = ops.conv(dy_padded, flipped, 1, "valid", dilation_rate=dilation)
            # Kernel gradient: for each kernel tap, dy^T @ (x shifted by the tap), one matmul
            # over batch and pixels each (no im2col copy of the input).
            x_padded = ops.pad(x, ((0, 0), *pads, (0, 0))) if padding == "same" else x
            b, ho, wo = dy.shape[0], dy.shape[1], dy.shape[2]
            dy_t = ops.transpose(ops.reshape(dy, (-1, o)))

            # A loop over the taps, so that one shifted copy of x is alive at a time (XLA
            # would otherwise schedule all kh * kw copies of every layer together).
            def tap(t, dk):
                i, j = t // kw, t % kw
                shifted = ops.slice(x_padded, (0, i * dh, j * dw, 0), (b, ho, wo, c))
                row = ops.matmul(dy_t, ops.reshape(shifted, (-1, c)))  # (O, C)
                return ops.slice_update(dk, (t, 0, 0), row[None])

            dk = ops.fori_loop(0, kh * kw, tap, ops.zeros((kh * kw, o, c), dy.dtype))
            dk = ops.transpose(dk, (0, 2, 1))  # (kh*kw, C, O)
            return dx, ops.reshape(dk, (kh, kw, c, o))

        return y, grad

    # A tensor, not a variable: TF's and torch's custom gradients track tensors.
    kernel = ops.copy(kernel) if isinstance(kernel, keras.Variable) else kernel
    return _conv(ops.convert_to_tensor(x), ops.convert_to_tensor(kernel))
