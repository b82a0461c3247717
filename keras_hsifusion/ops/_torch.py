"""The one place with backend-specific compute: zero-copy channels-last kernels for torch.

Keras' torch backend runs `Conv2D` by copying its NHWC input to NCHW, copying it again to
torch's channels-last memory format, convolving, and leaving a permuted output that the next
op copies once more; `Dense` adds its bias in a separate pass. On a 512x512x64 activation each
copy moves 64 MB, and in MSST-Net these copies took half of the forward time. Here the NHWC
tensor is handed to torch as the NCHW *view* it already is in memory (channels-last strides),
the bias is fused into the kernel call, and the channels-last result is viewed back as NHWC:
no copies. Results equal Keras' own path to float32 rounding (same oneDNN kernels).

torch is imported lazily; nothing here runs on the other backends.
"""

import keras
from keras.ops import convert_to_tensor


def active():
    return keras.backend.backend() == "torch"


def _operands(x, kernel, bias):
    """torch tensors of the input, and of the kernel and bias in the input's dtype."""
    x = convert_to_tensor(x)
    kernel = convert_to_tensor(kernel).to(x.dtype)
    if bias is not None:
        bias = convert_to_tensor(bias).to(x.dtype)
    return x, kernel, bias


def conv2d(x, kernel, bias, strides, padding, dilation_rate, groups):
    """NHWC conv with an HWIO kernel; `padding` is an int/pair for torch or 'valid'."""
    import torch.nn.functional as F

    x, kernel, bias = _operands(x, kernel, bias)
    y = F.conv2d(
        x.permute(0, 3, 1, 2),
        kernel.permute(3, 2, 0, 1),
        bias,
        stride=strides,
        padding=0 if padding == "valid" else padding,
        dilation=dilation_rate,
        groups=groups,
    )
    return y.permute(0, 2, 3, 1)


def linear(x, kernel, bias):
    """`x @ kernel + bias` in one addmm."""
    import torch.nn.functional as F

    x, kernel, bias = _operands(x, kernel, bias)
    return F.linear(x, kernel.t(), bias)


def patch_unembed(x, kernel, bias):
    """A transposed conv whose stride equals its kernel (non-overlapping patches), as one
    matmul and one reshuffle: Keras' path copies the (k, k, out, in) kernel to torch's layout
    on every call (32 MB at MSST-Net's patch 32)."""
    import torch
    import torch.nn.functional as F

    x, kernel, bias = _operands(x, kernel, bias)
    ph, pw, out, cin = kernel.shape
    if bias is not None:
        bias = torch.tile(bias, (ph * pw,))
    y = F.linear(x, kernel.reshape(ph * pw * out, cin), bias)
    b, h, w = x.shape[:3]
    y = y.reshape(b, h, w, ph, pw, out).permute(0, 1, 3, 2, 4, 5)
    return y.reshape(b, h * ph, w * pw, out)
