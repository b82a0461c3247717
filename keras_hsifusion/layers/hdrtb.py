"""HDRTB: HSSDCT's hierarchical dense-residue transformer block."""

from keras_hsifusion.layers._utils import (
    DenseResidueBlock,
    SameShapeLayer,
    block_heads,
    build_sublayer,
    dense,
    gelu,
    layer_norm,
    register,
)
from keras_hsifusion.layers.sscl import SSCL, check_sscl_config


@register
class HierarchicalTransformerBlock(SameShapeLayer):
    """One hierarchical transformer block of HSSDCT: SSCL, post-norm, residual, post-norm MLP.

    `x + LN1(SSCL(x))`, then `+ LN2(MLP(.))` with an exact-GELU MLP of `mlp_ratio * C` hidden
    units, as in the official `HierarchicalTransformerBlock`.

    Args:
        num_heads: heads of the spatial correlation.
        window_size: window side of this block.
        base_window_size: base window side (default 8).
        mlp_ratio: hidden width of the MLP relative to the channels (default 4.0).

    Input shape: `(B, H, W, C)`. Output shape: the same.
    """

    _CONFIG = ("num_heads", "window_size", "base_window_size", "mlp_ratio")

    def __init__(self, num_heads, window_size, base_window_size=8, mlp_ratio=4.0, **kwargs):
        super().__init__(**kwargs)
        if not mlp_ratio > 0:
            raise ValueError(f"`mlp_ratio` must be positive. Received: mlp_ratio={mlp_ratio}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.base_window_size = base_window_size
        self.mlp_ratio = mlp_ratio
        self.correlation = SSCL(
            num_heads,
            window_size,
            base_window_size,
            name="correlation",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        dim = input_shape[-1]
        dt = self.dtype_policy
        self.norm1 = layer_norm("norm1", dt)
        self.norm2 = layer_norm("norm2", dt)
        self.fc1 = dense(int(dim * self.mlp_ratio), "fc1", dt)
        self.fc2 = dense(dim, "fc2", dt)
        img = (None, None, None, dim)
        build_sublayer(self.correlation, img)
        build_sublayer(self.norm1, img)
        build_sublayer(self.norm2, img)
        build_sublayer(self.fc1, img)
        build_sublayer(self.fc2, (None, None, None, int(dim * self.mlp_ratio)))
        super().build(input_shape)

    def call(self, x):
        x = x + self.norm1(self.correlation(x))
        return x + self.norm2(self.fc2(gelu(self.fc1(x))))


def hdrtb_plan(dim, num_heads, gc, window_size=8, hier_win_ratios=(0.5, 1, 2, 4)):
    """(channels, heads, window) of the four blocks, with the official head rule.

    Block k sees `dim + k * gc` channels and uses `num_heads - ((dim + k*gc) % num_heads)`
    heads (block 0 uses `num_heads`), as in the official `SwinBasedFeatFusionBlock`.
    """
    plan = []
    for k, ratio in enumerate(hier_win_ratios):
        channels = dim + k * gc
        plan.append((channels, block_heads(num_heads, channels, k), int(window_size * ratio)))
    return plan


def check_hdrtb_config(
    dim, num_heads, gc, window_size=8, hier_win_ratios=(0.5, 1, 2, 4), where="HDRTB"
):
    if len(hier_win_ratios) != 4:
        raise ValueError(
            f"{where}: `hier_win_ratios` must have 4 entries. Received: {hier_win_ratios!r}"
        )
    if gc < 1:
        raise ValueError(f"{where}: `gc` must be >= 1. Received: gc={gc}")
    for k, (channels, heads, win) in enumerate(
        hdrtb_plan(dim, num_heads, gc, window_size, hier_win_ratios)
    ):
        if win < 1:
            raise ValueError(
                f"{where}: block {k + 1} gets window {win} from window_size={window_size} and "
                f"ratio {hier_win_ratios[k]}; it must be >= 1."
            )
        check_sscl_config(channels, heads, where=f"{where} block {k + 1}")


@register
class HDRTB(DenseResidueBlock):
    """Hierarchical dense-residue transformer block of HSSDCT (Lee et al., ICASSP 2026).

    Four `HierarchicalTransformerBlock`s with windows `window_size * hier_win_ratios`
    (4, 8, 16, 32 by default) are densely connected: block k sees the input concatenated with
    the `gc`-channel outputs of the blocks before it; a 1x1 "adjust" convolution and a
    LeakyReLU(0.2) follow each block (the last one maps back to `C` channels), and the output
    is `0.2 * x4 + x`. The fourth block has MLP ratio 1.

    Args:
        num_heads: heads of the first block; later blocks use the official rule
            `num_heads - ((C + k*gc) % num_heads)`.
        gc: growth channels of the dense connections (default 32).
        window_size: the base window side (default 8).
        hier_win_ratios: window ratios of the four blocks (default `(0.5, 1, 2, 4)`).
        mlp_ratio: MLP ratio of the first three blocks (default 4.0).

    Input shape: `(B, H, W, C)`, any `H`, `W`. Output shape: the same.

    Examples:
    >>> block = HDRTB(num_heads=8, gc=16)
    >>> tuple(block(keras.random.normal((1, 20, 24, 32))).shape)
    (1, 20, 24, 32)
    """

    _CONFIG = ("num_heads", "gc", "window_size", "hier_win_ratios", "mlp_ratio")

    def __init__(
        self,
        num_heads,
        gc=32,
        window_size=8,
        hier_win_ratios=(0.5, 1, 2, 4),
        mlp_ratio=4.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.gc = gc
        self.window_size = window_size
        self.hier_win_ratios = tuple(hier_win_ratios)
        self.mlp_ratio = mlp_ratio

    def build(self, input_shape):
        dim = input_shape[-1]
        check_hdrtb_config(
            dim,
            self.num_heads,
            self.gc,
            self.window_size,
            self.hier_win_ratios,
            where=f"HDRTB {self.name!r}",
        )
        super().build(input_shape)

    def _block(self, k, channels, **kwargs):
        heads = block_heads(self.num_heads, channels, k)
        window = int(self.window_size * self.hier_win_ratios[k])
        return HierarchicalTransformerBlock(heads, window, self.window_size, **kwargs)
