"""The dense window-attention block at the end of HSSDCT."""

from keras import initializers, ops

from keras_hsifusion.layers._utils import (
    DenseResidueBlock,
    SameShapeLayer,
    block_heads,
    build_sublayer,
    dense,
    gelu,
    layer_norm,
    register,
    relative_position_index,
)
from keras_hsifusion.ops import pad_to_windows, window_partition, window_reverse
from keras_hsifusion.utils.validation import check_int


def divisor_heads(dim, heads):
    """The largest head count <= `heads` that divides `dim`.

    Equals `heads` wherever the official code runs; elsewhere the official reshape crashes
    (see docs/differences.md, "head counts").
    """
    heads = max(1, min(heads, dim))
    while dim % heads:
        heads -= 1
    return heads


@register
class WindowTransformerBlock(SameShapeLayer):
    """Swin-style window attention block with HSSDCT's extra layer-scaled shortcut.

    `x + W-MSA(LN1(x))`, then `+ MLP(LN2(.))`, then `+ gamma * x_in` (the official "HAI"
    term, `gamma` initialised to `layerscale_value`). Attention uses a learned
    relative-position bias table; windows are not shifted (the official network builds this
    block with `input_resolution=(4, 4)`, which forces window 4 and shift 0). Inputs whose
    sides the window does not divide are zero-padded after LN1 and cropped back.

    Args:
        num_heads: attention heads; must divide the channel count.
        window_size: window side (default 4).
        mlp_ratio: MLP hidden width relative to the channels (default 4.0).
        layerscale_value: initial value of `gamma` (default 1e-4).

    Input shape: `(B, H, W, C)`. Output shape: the same.
    """

    _CONFIG = ("num_heads", "window_size", "mlp_ratio", "layerscale_value")

    def __init__(self, num_heads, window_size=4, mlp_ratio=4.0, layerscale_value=1e-4, **kwargs):
        super().__init__(**kwargs)
        check_int("window_size", window_size)
        self.num_heads = num_heads
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio
        self.layerscale_value = layerscale_value

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.num_heads < 1 or dim % self.num_heads:
            raise ValueError(
                f"WindowTransformerBlock {self.name!r}: `num_heads` must divide the channel "
                f"count. Received: num_heads={self.num_heads}, channels={dim}"
            )
        dt = self.dtype_policy
        hidden = int(dim * self.mlp_ratio)
        self.norm1 = layer_norm("norm1", dt)
        self.qkv = dense(3 * dim, "qkv", dt)
        self.proj = dense(dim, "proj", dt)
        self.norm2 = layer_norm("norm2", dt)
        self.fc1 = dense(hidden, "fc1", dt)
        self.fc2 = dense(dim, "fc2", dt)
        n = 2 * self.window_size - 1
        self.relative_position_bias_table = self.add_weight(
            shape=(n * n, self.num_heads),
            initializer=initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        self.gamma = self.add_weight(
            shape=(dim,),
            initializer=initializers.Constant(self.layerscale_value),
            name="gamma",
        )
        img = (None, None, None, dim)
        for layer in (self.norm1, self.qkv, self.proj, self.norm2, self.fc1):
            build_sublayer(layer, img)
        build_sublayer(self.fc2, (None, None, None, hidden))
        super().build(input_shape)

    def _attention(self, x):
        ws, nh = self.window_size, self.num_heads
        n = ws * ws
        dim = x.shape[-1]
        hd = dim // nh
        qkv = ops.reshape(self.qkv(x), (-1, n, 3, nh, hd))
        q = ops.transpose(qkv[:, :, 0], (0, 2, 1, 3)) * (hd**-0.5)
        k = ops.transpose(qkv[:, :, 1], (0, 2, 1, 3))
        v = ops.transpose(qkv[:, :, 2], (0, 2, 1, 3))
        bias = ops.take(
            self.relative_position_bias_table,
            ops.reshape(relative_position_index(ws, ws), (-1,)),
            axis=0,
        )
        bias = ops.transpose(ops.reshape(bias, (n, n, nh)), (2, 0, 1))
        attn = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) + ops.cast(bias, q.dtype)[None]
        attn = ops.softmax(attn, axis=-1)
        out = ops.reshape(ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)), (-1, n, dim))
        return self.proj(out)

    def call(self, x):
        shape = ops.shape(x)
        h, w = shape[1], shape[2]
        y = pad_to_windows(self.norm1(x), self.window_size, mode="zero")
        hp, wp = ops.shape(y)[1], ops.shape(y)[2]
        y = self._attention(window_partition(y, self.window_size))
        y = window_reverse(y, self.window_size, hp, wp)[:, :h, :w, :]
        out = x + y
        out = out + self.fc2(gelu(self.fc1(self.norm2(out))))
        return out + x * ops.cast(self.gamma, x.dtype)


@register
class DenseWindowBlock(DenseResidueBlock):
    """The dense block of four window-attention blocks that ends HSSDCT.

    Block k sees the input concatenated with the `gc`-channel outputs of the blocks before
    it; 1x1 "adjust" convolutions follow each block (LeakyReLU(0.2) after the first three;
    the fourth maps back to `C` channels without activation); output `0.2 * x4 + x`. The
    fourth block has MLP ratio 1. Heads follow the official rule
    `num_heads - ((C + k*gc) % num_heads)`.

    Args:
        num_heads: heads of the first block.
        gc: growth channels (default 32, fixed in the official network).
        window_size: attention window side (default 4, the official effective window).
        mlp_ratio: MLP ratio of the first three blocks (default 4.0).

    Input shape: `(B, H, W, C)`. Output shape: the same.
    """

    _CONFIG = ("num_heads", "gc", "window_size", "mlp_ratio")
    _ACTIVATE_LAST = False

    def __init__(self, num_heads, gc=32, window_size=4, mlp_ratio=4.0, **kwargs):
        super().__init__(**kwargs)
        check_int("gc", gc)
        self.num_heads = num_heads
        self.gc = gc
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio

    def _block(self, k, channels, **kwargs):
        heads = block_heads(self.num_heads, channels, k)
        # A head count that does not divide the channels is lowered (docs/differences.md,
        # "head counts").
        return WindowTransformerBlock(divisor_heads(channels, heads), self.window_size, **kwargs)
