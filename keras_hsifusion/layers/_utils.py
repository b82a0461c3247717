"""Small private helpers shared by the layers."""

import keras
from keras import layers, ops

from keras_hsifusion.layers.core import Dense


def layer_norm(name, dtype=None):
    # torch's LayerNorm epsilon; Keras' default of 1e-3 changes results visibly.
    return layers.LayerNormalization(epsilon=1e-5, name=name, dtype=dtype)


def dense(units, name, dtype=None, use_bias=True):
    return Dense(units, use_bias=use_bias, name=name, dtype=dtype)


def gelu(x):
    return ops.gelu(x, approximate=False)  # torch nn.GELU() is the exact erf form


def lrelu(x):
    return ops.leaky_relu(x, negative_slope=0.2)


def relative_position_index(wh, ww):
    """Swin's (wh*ww, wh*ww) index into a ((2wh-1)*(2ww-1)) bias table, built with ops."""
    n = wh * ww
    a = ops.arange(n, dtype="int32")
    ah, aw = a // ww, a % ww
    rel_h = ah[:, None] - ah[None, :] + (wh - 1)
    rel_w = aw[:, None] - aw[None, :] + (ww - 1)
    return rel_h * (2 * ww - 1) + rel_w


def build_sublayer(layer, shape):
    if not layer.built:
        layer.build(shape)


def register(cls):
    return keras.saving.register_keras_serializable(package="keras_hsifusion")(cls)


def block_heads(num_heads, channels, k):
    """HSSDCT's head rule for the k-th block of a dense block: `h - (channels % h)` after the
    first, which uses `h` itself."""
    return num_heads if k == 0 else num_heads - (channels % num_heads)


def dense_connect(x, blocks, adjusts, activate_last):
    """Dense-residue connection of HSSDCT's blocks: block k sees the input concatenated with
    every earlier output, each block is followed by its 1x1 "adjust" map and LeakyReLU(0.2)
    (the last one only if `activate_last`); returns `0.2 * last + x`."""
    feats = [x]
    for k, (block, adjust) in enumerate(zip(blocks, adjusts)):
        inp = feats[0] if k == 0 else ops.concatenate(feats, axis=-1)
        y = adjust(block(inp))
        feats.append(lrelu(y) if activate_last or k < len(blocks) - 1 else y)
    return feats[-1] * 0.2 + x
