"""Small private layers of the MSST-Net graph (padding, pixel shuffle, masking, branch weights)."""

import keras
from keras import layers, ops

from keras_hsifusion.layers.core import register
from keras_hsifusion.ops.padding import pad_amount, reflect_pad
from keras_hsifusion.ops.pixel_shuffle import pixel_shuffle
from keras_hsifusion.utils.validation import lcm


def layer_norm(name, dtype=None):
    # torch's LayerNorm epsilon, as the public layers' (keras_hsifusion.layers); Keras' default
    # of 1e-3 changes results visibly.
    return layers.LayerNormalization(epsilon=1e-5, name=name, dtype=dtype)


@register
class MSSTPad(layers.Layer):
    """Reflect-pads images at the bottom/right so MSST-Net's patches and heads divide them.

    The first input (LR grid) is padded so that its sides are multiples of `multiple` and
    `rows * columns` is a multiple of `heads` (extra columns are added only when that product
    is not already a multiple). Every further input is padded by `scale` times as much. Sizes
    that already fit are left untouched, so they reproduce the official code exactly.
    The official code rejects other sizes (docs/differences.md, MSST-Net: any input size).
    """

    def __init__(self, multiple=1, heads=1, scale=1, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)
        self.heads = int(heads)
        self.scale = int(scale)

    def call(self, inputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        shape = ops.shape(inputs[0])
        h, w = shape[1], shape[2]
        ph, pw = pad_amount(h, self.multiple), pad_amount(w, self.multiple)
        if self.heads > 1:
            wp = w + pw
            extra = pad_amount(wp, lcm(self.multiple, self.heads))
            if isinstance(h, int) and isinstance(w, int):
                # Static sizes (torch, JAX under jit): keep the pads Python ints.
                pw = pw + (0 if ((h + ph) * wp) % self.heads == 0 else extra)
            else:
                fits = ops.equal(((h + ph) * wp) % self.heads, 0)
                pw = pw + ops.where(fits, 0, extra)
        out = [reflect_pad(inputs[0], ph, pw)]
        out += [reflect_pad(x, ph * self.scale, pw * self.scale) for x in inputs[1:]]
        return out

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list):
            return [(s[0], None, None, s[-1]) for s in input_shape]
        return [(input_shape[0], None, None, input_shape[-1])]

    def get_config(self):
        config = super().get_config()
        config.update({"multiple": self.multiple, "heads": self.heads, "scale": self.scale})
        return config


@register
class MSSTCrop(layers.Layer):
    """Crops `x` to `scale` times the spatial size of `reference`: inputs `[x, reference]`."""

    def __init__(self, scale=1, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1] * self.scale, : shape[2] * self.scale]

    def compute_output_shape(self, input_shape):
        x, reference = input_shape
        size = [None if s is None else s * self.scale for s in reference[1:3]]
        return (x[0], *size, x[-1])

    def get_config(self):
        config = super().get_config()
        config["scale"] = self.scale
        return config


@register
class PixelShuffle(layers.Layer):
    """`torch.nn.PixelShuffle(factor)` on channels-last tensors."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return pixel_shuffle(x, self.factor)

    def compute_output_shape(self, input_shape):
        r = self.factor
        size = [None if s is None else s * r for s in input_shape[1:3]]
        return (input_shape[0], *size, input_shape[-1] // (r * r))

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


@register
class BranchWeights(layers.Layer):
    """Weighted sum `sum_k x_k * (w_k / sum_j w_j)` of the three scale branches.

    The official weights are constants 1; here they are trainable scalars initialised to 1
    (docs/differences.md, MSST-Net 3).
    """

    def __init__(self, weight_names=("a", "b", "c"), **kwargs):
        super().__init__(**kwargs)
        self.weight_names = list(weight_names)

    def build(self, input_shape):
        self.branch_weights = [
            self.add_weight(name=n, shape=(), initializer="ones", trainable=True)
            for n in self.weight_names
        ]

    def call(self, inputs):
        total = None
        for w in self.branch_weights:
            total = w if total is None else total + w
        out = None
        for x, w in zip(inputs, self.branch_weights, strict=True):
            term = x * ops.cast(w / total, x.dtype)
            out = term if out is None else out + term
        return out

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config["weight_names"] = list(self.weight_names)
        return config


class _RandomMask(layers.Layer):
    """Zeroes `round(mask_ratio * n)` random entries of an axis of size `n` while training.

    One mask per call, shared by the batch (as the official `MaskEmbed`); drawn from a seeded
    `keras.random.SeedGenerator`, so a new mask every training step. Identity at inference
    (the official code also masks at evaluation: docs/differences.md, MSST-Net: masking).
    Subclasses define `_mask(x)`, the 0/1 mask to multiply `x` by.
    """

    def __init__(self, mask_ratio, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.mask_ratio = float(mask_ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.mask_ratio == 0.0:
            return x
        return x * self._mask(x)

    def get_config(self):
        config = super().get_config()
        config.update({"mask_ratio": self.mask_ratio, "seed": self.seed})
        return config


@register
class RandomChannelMask(_RandomMask):
    """MBAE masking: zeroes `round(mask_ratio * D)` random embedded channels (`_RandomMask`)."""

    def _mask(self, x):
        d = x.shape[-1]
        n_mask = int(round(self.mask_ratio * d))
        noise = keras.random.uniform((d,), seed=self.seed_generator)
        rank = ops.argsort(ops.argsort(noise))
        return ops.cast(rank >= n_mask, x.dtype)


@register
class RandomTokenMask(_RandomMask):
    """MPAE masking: zeroes `round(mask_ratio * rows * columns)` random tokens
    (`_RandomMask`)."""

    def _mask(self, x):
        shape = ops.shape(x)
        h, w = shape[1], shape[2]
        noise = keras.random.uniform((h * w,), seed=self.seed_generator)
        n_mask = ops.cast(ops.round(self.mask_ratio * ops.cast(h * w, "float32")), "int32")
        rank = ops.cast(ops.argsort(ops.argsort(noise)), "int32")
        return ops.reshape(ops.cast(rank >= n_mask, x.dtype), (1, h, w, 1))
