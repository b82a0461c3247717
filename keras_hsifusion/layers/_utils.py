"""Small private helpers and base classes shared by the layers."""

from keras import layers, ops

from keras_hsifusion.layers.core import Dense, register

__all__ = [
    "DenseResidueBlock",
    "SameShapeLayer",
    "block_heads",
    "build_sublayer",
    "dense",
    "gelu",
    "layer_norm",
    "lrelu",
    "register",
    "relative_position_index",
]


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


def block_heads(num_heads, channels, k):
    """HSSDCT's head rule for the k-th block of a dense block: `h - (channels % h)` after the
    first, which uses `h` itself."""
    return num_heads if k == 0 else num_heads - (channels % num_heads)


class SameShapeLayer(layers.Layer):
    """A layer whose output has the shape of its input and whose config adds the attributes
    named in `_CONFIG` (tuples written as lists, as JSON gives them back)."""

    _CONFIG = ()

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        for key in self._CONFIG:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, tuple) else value
        return config


class DenseResidueBlock(SameShapeLayer):
    """HSSDCT's dense-residue connection of four blocks (base of `HDRTB`, `DenseWindowBlock`).

    Block k sees the input concatenated with every earlier block's output; each block is
    followed by its 1x1 "adjust" map (to `gc` channels, the last one back to `C`) and
    LeakyReLU(0.2) (the last one only if `_ACTIVATE_LAST`); the output is `0.2 * last + x`.
    The fourth block has MLP ratio 1. Subclasses set `gc` and `mlp_ratio` and define
    `_block(k, channels, **kwargs)`, the k-th block for its input channel count, built with
    `kwargs` (its `mlp_ratio`, `name` and `dtype`).
    """

    _ACTIVATE_LAST = True

    def _block(self, k, channels, **kwargs):
        raise NotImplementedError

    def build(self, input_shape):
        dim = input_shape[-1]
        self.blocks, self.adjusts = [], []
        for k in range(4):
            channels = dim + k * self.gc
            mlp_ratio = self.mlp_ratio if k < 3 else 1.0
            block = self._block(
                k, channels, mlp_ratio=mlp_ratio, name=f"block{k + 1}", dtype=self.dtype_policy
            )
            adjust = dense(self.gc if k < 3 else dim, f"adjust{k + 1}", self.dtype_policy)
            build_sublayer(block, (None, None, None, channels))
            build_sublayer(adjust, (None, None, None, channels))
            self.blocks.append(block)
            self.adjusts.append(adjust)
        super().build(input_shape)

    def call(self, x):
        feats = [x]
        last = len(self.blocks) - 1
        for k, (block, adjust) in enumerate(zip(self.blocks, self.adjusts)):
            inp = feats[0] if k == 0 else ops.concatenate(feats, axis=-1)
            y = adjust(block(inp))
            feats.append(lrelu(y) if self._ACTIVATE_LAST or k < last else y)
        return feats[-1] * 0.2 + x
