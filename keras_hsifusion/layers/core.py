"""`Conv2D`, `Conv2DTranspose` and `Dense` with a copy-free fast path on the torch backend.

Drop-in subclasses of the Keras layers: same arguments, weights, config and numbers. On
torch, when the layer is a plain float layer (no LoRA, no quantization, channels_last, stride-1
"same" with odd kernels or "valid"), `call` goes through `keras_hsifusion.ops._torch`, which
skips the layout copies Keras' torch backend makes (see that module); non-overlapping
`Conv2D`s (strides equal to the kernel, "valid": patch embeddings) with kernels at least as
large as their input run there as a space-to-depth and one matmul, because torch's
convolution copies the `(k, k, C, out)` kernel to its own layout in the forward and twice in
the backward (32 MB each at MSST-Net's patch 32: most of that layer's training time at
128x128). Non-overlapping
transposed convs (strides equal to the kernel) run as one matmul on every backend
(`keras_hsifusion.ops.patches`). On JAX with CPU devices, stride-1 and non-overlapping
`Conv2D`s compute their kernel gradient as matmuls (`keras_hsifusion.ops.conv`,
`ops.patches.patch_embed`): XLA's CPU filter-gradient convolution is 5-23x slower.
Everywhere else `call` is Keras' own.
"""

import functools
import math

import keras
from keras import layers

from keras_hsifusion.ops import _torch
from keras_hsifusion.ops.conv import conv2d
from keras_hsifusion.ops.patches import patch_embed, patch_unembed


def register(cls):
    """Registers a layer or model class for `.keras` files as `keras_hsifusion>ClassName`.

    The package's one registration helper (every layer and model of the zoo uses it).
    """
    return keras.saving.register_keras_serializable(package="keras_hsifusion")(cls)


def _plain(layer, inputs, any_backend=False):
    return (
        (any_backend or _torch.active())
        and not getattr(layer, "lora_enabled", False)
        and layer.quantization_mode is None
        and keras.backend.is_float_dtype(inputs.dtype)
    )


@functools.cache
def _xla_cpu():
    """True on JAX when its devices are CPUs, where XLA computes a convolution's kernel
    gradient with a slow image-sized-window convolution (`keras_hsifusion.ops.conv`)."""
    if keras.backend.backend() != "jax":
        return False
    devices = keras.distribution.list_devices()
    return bool(devices) and all(d.lower().startswith("cpu") for d in devices)


def _fast_call(layer, kernel_fn, inputs, *args):
    """`kernel_fn(inputs, kernel, bias, *args)`, then the layer's activation."""
    y = kernel_fn(inputs, layer.kernel, layer.bias, *args)
    return layer.activation(y) if layer.activation is not None else y


@register
class Conv2D(layers.Conv2D):
    """`keras.layers.Conv2D` (channels_last) without layout copies on torch."""

    def _torch_padding(self):
        if self.padding == "valid":
            return "valid"
        if all(s == 1 for s in self.strides) and all(k % 2 for k in self.kernel_size):
            return tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation_rate))
        return None

    def _torch_patches(self, inputs):
        # A non-overlapping conv whose kernel is at least as large as its input images: the
        # matmul's two copies of the input (space-to-depth, and back in the backward) then
        # cost less than the convolution's three of the kernel (measured on MSST-Net's patch
        # embeddings, `(k, k, C, out)` against `(B, H, W, C)`; smaller kernels are faster as
        # oneDNN convolutions).
        return (
            self.padding == "valid"
            and self.groups == 1
            and tuple(self.strides) == tuple(self.kernel_size)
            and tuple(self.dilation_rate) == (1, 1)
            and math.prod(self.kernel_size) > 1
            and None not in inputs.shape[:3]
            and math.prod(inputs.shape[:3]) <= math.prod(self.kernel_size) * self.filters
        )

    def call(self, inputs):
        padding = self._torch_padding()
        if (
            _xla_cpu()
            and self.data_format == "channels_last"
            and self.groups == 1
            and None not in inputs.shape[1:3]
            and _plain(self, inputs, any_backend=True)
        ):
            patches = (
                tuple(self.strides) == tuple(self.kernel_size)
                and self.padding == "valid"
                and tuple(self.dilation_rate) == (1, 1)
            )
            if patches:
                return _fast_call(self, patch_embed, inputs)
            if padding and all(s == 1 for s in self.strides):
                return _fast_call(self, _conv2d, inputs, self.dilation_rate, self.padding)
        if not (_plain(self, inputs) and self.data_format == "channels_last" and padding):
            return super().call(inputs)
        if self._torch_patches(inputs):
            return _fast_call(self, _torch_patch_embed, inputs)
        return _fast_call(
            self, _torch.conv2d, inputs, self.strides, padding, self.dilation_rate, self.groups
        )


def _torch_patch_embed(x, kernel, bias):
    """A non-overlapping conv as a space-to-depth and one addmm with the `(k, k, C, out)`
    kernel viewed, not copied, as `(k * k * C, out)` (`ops.patches.patch_embed` with the
    bias fused). Rows and columns past the last whole patch are dropped, as the conv does."""
    kh, kw, cin, out = kernel.shape
    b = keras.ops.shape(x)[0]
    h, w = x.shape[1] // kh, x.shape[2] // kw
    x = keras.ops.reshape(x[:, : h * kh, : w * kw], (b, h, kh, w, kw, cin))
    x = keras.ops.reshape(keras.ops.transpose(x, (0, 1, 3, 2, 4, 5)), (b, h, w, kh * kw * cin))
    return _torch.linear(x, keras.ops.reshape(kernel, (kh * kw * cin, out)), bias)


def _conv2d(x, kernel, bias, dilation, padding):
    y = conv2d(x, keras.ops.cast(kernel, x.dtype), dilation, padding)
    return y if bias is None else y + keras.ops.cast(bias, x.dtype)


@register
class Dense(layers.Dense):
    """`keras.layers.Dense` with its bias fused into the matmul on torch."""

    def call(self, inputs, training=None):
        if not _plain(self, inputs):
            return super().call(inputs, training=training)
        return _fast_call(self, _torch.linear, inputs)


@register
class Conv2DTranspose(layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose`; non-overlapping ones (strides equal to the kernel,
    "valid") run as one matmul (`keras_hsifusion.ops.patches`), on torch without re-laying
    out the kernel."""

    def call(self, inputs):
        patches = (
            self.data_format == "channels_last"
            and tuple(self.strides) == tuple(self.kernel_size)
            and self.padding == "valid"
            and self.output_padding is None
            and tuple(self.dilation_rate) == (1, 1)
        )
        if not (patches and _plain(self, inputs, any_backend=True)):
            return super().call(inputs)
        kernel_fn = _torch.patch_unembed if _torch.active() else patch_unembed
        return _fast_call(self, kernel_fn, inputs)
