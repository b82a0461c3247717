"""Small private helpers shared by the layers."""

import keras
from keras import layers, ops


def layer_norm(name, dtype=None):
    # torch's LayerNorm epsilon; Keras' default of 1e-3 changes results visibly.
    return layers.LayerNormalization(epsilon=1e-5, name=name, dtype=dtype)


def dense(units, name, dtype=None, use_bias=True):
    return layers.Dense(units, use_bias=use_bias, name=name, dtype=dtype)


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
