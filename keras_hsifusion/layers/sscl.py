"""SSCL: the spatial-channel correlation of HSSDCT (the official `SCC`)."""

from keras import ops

from keras_hsifusion.layers._utils import (
    SameShapeLayer,
    build_sublayer,
    dense,
    layer_norm,
    lrelu,
    register,
)
from keras_hsifusion.layers.core import Conv2D
from keras_hsifusion.ops import pad_to_windows, window_partition, window_reverse
from keras_hsifusion.utils.validation import check_int


def check_sscl_config(dim, num_heads, where="SSCL"):
    """Raises `ValueError` for channel/head combinations the official `SCC` cannot run."""
    if num_heads < 1:
        raise ValueError(f"{where}: `num_heads` must be >= 1. Received: num_heads={num_heads}")
    if dim % (2 * num_heads) or dim < 16:
        raise ValueError(
            f"{where}: the channel count must be >= 16 and divisible by 2 * num_heads "
            f"(queries and values split it in halves, each into `num_heads` heads). "
            f"Received: channels={dim}, num_heads={num_heads}"
        )


@register
class SSCL(SameShapeLayer):
    """Spatial-channel correlation layer of HSSDCT (Lee et al., ICASSP 2026).

    Queries and values come from a dual feature extractor (1x1 -> 3x3 -> 1x1 convolutions
    gated by a 1x1 linear branch). Inside each window, the spatial half correlates queries
    with values that a learned spatial linear map reduces to the base window, plus a dynamic
    relative-position bias (an MLP over relative coordinates); the channel half correlates
    channels with a single head, normalised by the window length. Both halves are
    concatenated and projected. The input is reflect-padded to a multiple of the window and
    cropped back, so any spatial size works.

    Args:
        num_heads: heads of the spatial correlation; the channel count must be divisible by
            `2 * num_heads`.
        window_size: side of the square window.
        base_window_size: side of the base window the values are reduced to (default 8);
            the effective base is `min(window_size, base_window_size)`, which must divide
            `window_size`.

    Input shape: `(B, H, W, C)`. Output shape: the same.

    Examples:
    >>> layer = SSCL(num_heads=2, window_size=8)
    >>> tuple(layer(keras.random.normal((1, 12, 10, 32))).shape)  # padded to 16 x 16 inside
    (1, 12, 10, 32)
    """

    _CONFIG = ("num_heads", "window_size", "base_window_size")

    def __init__(self, num_heads, window_size, base_window_size=8, **kwargs):
        super().__init__(**kwargs)
        check_int("window_size", window_size)
        check_int("base_window_size", base_window_size)
        base = min(window_size, base_window_size)
        if window_size % base:
            raise ValueError(
                "`window_size` must be smaller than or a multiple of `base_window_size`. "
                f"Received: window_size={window_size}, base_window_size={base_window_size}"
            )
        self.num_heads = num_heads
        self.window_size = window_size
        self.base_window_size = base_window_size
        self._base = base
        self._ratio = window_size // base

    def build(self, input_shape):
        dim = input_shape[-1]
        check_sscl_config(dim, self.num_heads, where=f"SSCL {self.name!r}")
        hidden = dim // 5
        pos_dim = dim // 16  # the official DynamicPosBias gets dim // 4 and quarters it again
        dt = self.dtype_policy
        self.dfe_conv1 = dense(hidden, "dfe_conv1", dt)
        self.dfe_conv2 = Conv2D(hidden, 3, padding="same", name="dfe_conv2", dtype=dt)
        self.dfe_conv3 = dense(dim, "dfe_conv3", dt)
        self.dfe_linear = dense(dim, "dfe_linear", dt)
        self.proj = dense(dim, "proj", dt)
        self.pos_proj = dense(pos_dim, "pos_proj", dt)
        self.pos_norms = [layer_norm(f"pos{i}_norm", dt) for i in (1, 2, 3)]
        self.pos_fcs = [
            dense(pos_dim, "pos1_fc", dt),
            dense(pos_dim, "pos2_fc", dt),
            dense(self.num_heads, "pos3_fc", dt),
        ]
        r2 = self._ratio * self._ratio
        self.spatial_kernel = self.add_weight(
            shape=(r2, 1), initializer="glorot_uniform", name="spatial_kernel"
        )
        self.spatial_bias = self.add_weight(shape=(1,), initializer="zeros", name="spatial_bias")
        img = (None, None, None, dim)
        build_sublayer(self.dfe_conv1, img)
        build_sublayer(self.dfe_conv2, (None, None, None, hidden))
        build_sublayer(self.dfe_conv3, (None, None, None, hidden))
        build_sublayer(self.dfe_linear, img)
        build_sublayer(self.proj, img)
        build_sublayer(self.pos_proj, (None, 2))
        for norm, fc in zip(self.pos_norms, self.pos_fcs):
            build_sublayer(norm, (None, pos_dim))
            build_sublayer(fc, (None, pos_dim))
        super().build(input_shape)

    def _position_bias(self):
        """(heads, ws*ws, base*base) bias from the dynamic position MLP.

        The official code gathers a (ws*ws, ws*ws) bias and averages each base key's r x r
        sub-keys. The same mean is taken here on the (2ws-1)^2 table first (a box filter of
        side r), then gathered at the base keys: r^2 times fewer gathered values, the same
        numbers up to float32 summation order.
        """
        ws, bs, r, nh = self.window_size, self._base, self._ratio, self.num_heads
        n, m = 2 * ws - 1, 2 * ws - r
        coords = ops.cast(ops.arange(1 - ws, ws), self.compute_dtype)
        table = ops.stack([ops.repeat(coords, n), ops.tile(coords, n)], axis=-1)
        pos = self.pos_proj(table)
        for norm, fc in zip(self.pos_norms, self.pos_fcs):
            pos = fc(ops.relu(norm(pos)))
        pos = ops.reshape(pos, (n, n, nh))
        # pooled[a, b] = mean of pos[a + r-1 - i, b + r-1 - j] over i, j < r.
        pos = sum(pos[r - 1 - i : r - 1 - i + m] for i in range(r))
        pos = sum(pos[:, r - 1 - j : r - 1 - j + m] for j in range(r)) / float(r * r)
        q, k = ops.arange(ws * ws, dtype="int32"), ops.arange(bs * bs, dtype="int32")
        rows = q[:, None] // ws - r * (k[None, :] // bs) + (ws - r)
        cols = q[:, None] % ws - r * (k[None, :] % bs) + (ws - r)
        bias = ops.take(ops.reshape(pos, (m * m, nh)), ops.reshape(rows * m + cols, (-1,)), axis=0)
        return ops.transpose(ops.reshape(bias, (ws * ws, bs * bs, nh)), (2, 0, 1))

    def call(self, x):
        shape = ops.shape(x)
        h, w = shape[1], shape[2]
        dim = x.shape[-1]
        half, nh = dim // 2, self.num_heads
        hd = half // nh
        ws, bs, r = self.window_size, self._base, self._ratio
        length = ws * ws

        xp = pad_to_windows(x, ws, mode="reflect")
        hp, wp = ops.shape(xp)[1], ops.shape(xp)[2]
        feat = self.dfe_conv1(xp)
        feat = lrelu(self.dfe_conv2(lrelu(feat)))
        qv = self.dfe_conv3(feat) * self.dfe_linear(xp)

        win = window_partition(qv, ws)  # (B', L, C)
        q, v = win[..., :half], win[..., half:]

        # Spatial self-correlation: values reduced to the base window by a learned linear map.
        kernel = ops.reshape(ops.cast(self.spatial_kernel, v.dtype), (r, r))
        v_red = ops.reshape(v, (-1, bs, r, bs, r, half))
        v_red = ops.einsum("bxiyjc,ij->bxyc", v_red, kernel) + ops.cast(
            self.spatial_bias[0], v.dtype
        )
        v_red = ops.transpose(ops.reshape(v_red, (-1, bs * bs, nh, hd)), (0, 2, 1, 3))
        q_h = ops.transpose(ops.reshape(q, (-1, length, nh, hd)), (0, 2, 1, 3))
        corr = ops.einsum("bhld,bhkd->bhlk", q_h, v_red) / float(hd)
        corr = corr + ops.cast(self._position_bias(), corr.dtype)[None]
        x_spatial = ops.einsum("bhlk,bhkd->blhd", corr, v_red)
        x_spatial = ops.reshape(x_spatial, (-1, length, half))

        # Channel self-correlation: one head, normalised by the window length.
        corr_c = ops.einsum("blc,bld->bcd", q, v) / float(length)
        x_channel = ops.einsum("bcd,bld->blc", corr_c, v)

        out = window_reverse(ops.concatenate([x_spatial, x_channel], axis=-1), ws, hp, wp)
        return self.proj(out[:, :h, :w, :])
