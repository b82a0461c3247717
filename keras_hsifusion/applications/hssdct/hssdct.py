"""HSSDCT (Lee et al., ICASSP 2026), ported from the official jemmyleee/HSSDCT code."""

import math

import keras
from keras import layers

from keras_hsifusion.applications.fusion_model import FusionModel
from keras_hsifusion.layers.core import Conv2D, register
from keras_hsifusion.layers.dense_swin import DenseWindowBlock
from keras_hsifusion.layers.global_skip import (
    add_global_skip,
    check_global_skip,
    check_residual_scale,
)
from keras_hsifusion.layers.hdrtb import HDRTB, check_hdrtb_config
from keras_hsifusion.layers.interpolate import Interpolate
from keras_hsifusion.utils.validation import check_int, lcm

_SCALES = (2, 4, 8)


def _official_heads(dim):
    return 8 - (dim % 8)  # the official YDCFN's head rule


@register
class HSSDCT(FusionModel):
    """Hierarchical spatial-spectral dense correlation transformer for HSI/MSI fusion.

    Lee et al., "HSSDCT", ICASSP 2026; a faithful port of the released code
    (`YDCFN` inside `HyDCFN`, jemmyleee/HSSDCT). With `scale=4` it is the official network
    exactly (checked against the official code on golden fixtures).

    The LR-HSI branch concatenates the LR-HSI with a bicubic-downsampled MSI, convolves to
    `2 * nf` channels, upsamples x2 (nearest), runs two `HDRTB`s with a long skip, upsamples
    x`scale/2` and convolves to `nf`. The HR-MSI branch concatenates the MSI with a bilinear
    x`scale` LR-HSI, convolves to `nf // 2`, runs two `HDRTB`s with a long skip and convolves
    to `nf`. The sum of both is fused to `hsi_bands` channels, refined by a dense block of
    four window-attention blocks, and a last 3x3 convolution gives the HR-HSI.

    Args:
        hsi_bands: bands `C` of the LR-HSI and of the output.
        msi_bands: bands `c` of the HR-MSI.
        scale: resolution ratio, 2, 4 (official) or 8.
        nf: base feature width (default 96). The HSI branch runs at `2 * nf` channels and
            the MSI branch at `nf // 2`; both must give valid head splits (see below).
        gc: growth channels of the HDRTBs (default 32).
        window_size: base window of the HDRTBs (default 8).
        hier_win_ratios: window ratios of the four blocks of an HDRTB (default 0.5, 1, 2, 4).
        mlp_ratio: MLP ratio of the transformer blocks (default 4.0).
        final_window_size: window of the final dense attention block (default 4: the
            official code builds it with window 8 and input_resolution (4, 4), which makes
            the window 4 and the shift 0).
        global_skip: None (default: the official network), `"bicubic"` or
            `"detail_injection"`: the output becomes that parameter-free estimate
            (`layers.GlobalSkip`) plus the network's output times a trainable gate that starts
            at 0.01 (`layers.ResidualGate`), so the network learns the residual over the
            estimate (not in the official network: docs/differences.md).
        residual_scale: the fixed gate of the network's output over the `global_skip`
            estimate (default 0.01; the robust presets use a larger one, see their cards).

    Heads follow the official rule (`8 - (channels % 8)`, then `h - ((channels + k*gc) % h)`
    for the k-th block). In the HDRTBs every block's channels must be divisible by twice its
    heads; combinations where the official code crashes raise a `ValueError` here (for
    example `nf` a multiple of 32 with `gc` a multiple of 16 always works). In the final
    block, which depends on the band count, a head count that does not divide the channels
    is lowered to the nearest one that does (see docs/differences.md).

    Inputs: `{"lr_hsi": (B, h, w, C), "hr_msi": (B, scale*h, scale*w, c)}`, any `h`, `w`.
    Output: `(B, scale*h, scale*w, C)`.

    Examples:
    `HSSDCT(hsi_bands=172, msi_bands=4)` is the official network; a small one, called as
    `model({"lr_hsi": lr, "hr_msi": hr})` on `(B, h, w, 8)` and `(B, 4h, 4w, 3)` inputs:
    >>> model = HSSDCT(hsi_bands=8, msi_bands=3, nf=32, gc=16)
    >>> model.output_shape, model.count_params()  # (B, 4h, 4w, 8) for any h, w
    ((None, None, None, 8), 888834)
    """

    # Tiled inference (`fuse`): default HR tile and overlap (measured: docs/fuse.md).
    fuse_tile = 256
    fuse_overlap = 64

    @property
    def fuse_multiple(self):
        """HR alignment of `fuse` tiles: every window divides the grids it runs on (the HSI
        branch at 2x the LR grid, the MSI branch and the final block at the HR grid)."""
        windows = lcm(*(int(self.window_size * r) for r in self.hier_win_ratios))
        hsi = self.scale * windows // math.gcd(windows, 2)
        return lcm(hsi, windows, self.final_window_size)

    def __init__(
        self,
        hsi_bands,
        msi_bands,
        scale=4,
        nf=96,
        gc=32,
        window_size=8,
        hier_win_ratios=(0.5, 1, 2, 4),
        mlp_ratio=4.0,
        final_window_size=4,
        global_skip=None,
        residual_scale=0.01,
        dtype=None,
        **kwargs,
    ):
        check_int("hsi_bands", hsi_bands)
        check_int("msi_bands", msi_bands)
        if scale not in _SCALES or isinstance(scale, bool):
            raise ValueError(f"`scale` must be one of {_SCALES}. Received: scale={scale!r}")
        check_int("nf", nf, minimum=2)
        if nf % 2:
            raise ValueError(f"`nf` must be even (the MSI branch uses nf // 2). Received: nf={nf}")
        check_int("gc", gc)
        check_int("window_size", window_size)
        check_int("final_window_size", final_window_size)
        check_global_skip(global_skip)
        check_residual_scale(residual_scale)
        if not (isinstance(mlp_ratio, (int, float)) and mlp_ratio > 0):
            raise ValueError(f"`mlp_ratio` must be positive. Received: mlp_ratio={mlp_ratio!r}")
        hier_win_ratios = tuple(float(r) for r in hier_win_ratios)
        for branch, dim in (("HSI branch (2 * nf)", 2 * nf), ("MSI branch (nf // 2)", nf // 2)):
            try:
                check_hdrtb_config(
                    dim, _official_heads(dim), gc, window_size, hier_win_ratios, where=branch
                )
            except ValueError as e:
                raise ValueError(
                    f"HSSDCT cannot be built with nf={nf}, gc={gc}: {e}. The official head "
                    "rule needs every block's channels divisible by 2 * heads; nf a multiple "
                    "of 32 with gc a multiple of 16 always works."
                ) from None

        # === Layers ===
        conv = dict(kernel_size=3, padding="same", dtype=dtype)
        lrelu = dict(negative_slope=0.2, dtype=dtype)
        hsi_heads, msi_heads = _official_heads(2 * nf), _official_heads(nf // 2)
        hdrtb = dict(
            gc=gc,
            window_size=window_size,
            hier_win_ratios=hier_win_ratios,
            mlp_ratio=mlp_ratio,
            dtype=dtype,
        )
        msi_down = Interpolate(1.0 / scale, "bicubic", name="msi_down", dtype=dtype)
        hsi_up = Interpolate(float(scale), "bilinear", name="hsi_up", dtype=dtype)
        hsi_conv_first = Conv2D(2 * nf, name="hsi_conv_first", **conv)
        hsi_blocks = [HDRTB(hsi_heads, name=f"hsi_hdrtb{i + 1}", **hdrtb) for i in range(2)]
        hsi_conv_last = Conv2D(nf, name="hsi_conv_last", **conv)
        msi_conv_first = Conv2D(nf // 2, name="msi_conv_first", **conv)
        msi_blocks = [HDRTB(msi_heads, name=f"msi_hdrtb{i + 1}", **hdrtb) for i in range(2)]
        msi_conv_last = Conv2D(nf, name="msi_conv_last", **conv)
        fuse_conv = Conv2D(hsi_bands, name="fuse_conv", **conv)
        final_block = DenseWindowBlock(
            _official_heads(hsi_bands),
            gc=32,  # hard-coded in the official network, independent of `gc`
            window_size=final_window_size,
            mlp_ratio=mlp_ratio,
            name="final_block",
            dtype=dtype,
        )
        last_conv = Conv2D(hsi_bands, use_bias=False, name="last_conv", **conv)

        # === Functional Model ===
        lr_hsi = keras.Input(shape=(None, None, hsi_bands), name="lr_hsi")
        hr_msi = keras.Input(shape=(None, None, msi_bands), name="hr_msi")

        x = layers.Concatenate(name="hsi_concat", dtype=dtype)([lr_hsi, msi_down(hr_msi)])
        x = layers.LeakyReLU(name="hsi_act1", **lrelu)(hsi_conv_first(x))
        x = layers.UpSampling2D(2, name="hsi_up1", dtype=dtype)(x)
        skip = x
        for block in hsi_blocks:
            x = block(x)
        x = layers.Add(name="hsi_skip", dtype=dtype)([x, skip])
        if scale > 2:
            x = layers.UpSampling2D(scale // 2, name="hsi_up2", dtype=dtype)(x)
        x = layers.LeakyReLU(name="hsi_act2", **lrelu)(x)
        hsi_feat = hsi_conv_last(x)

        y = layers.Concatenate(name="msi_concat", dtype=dtype)([hr_msi, hsi_up(lr_hsi)])
        y = layers.LeakyReLU(name="msi_act1", **lrelu)(msi_conv_first(y))
        skip = y
        for block in msi_blocks:
            y = block(y)
        y = layers.Add(name="msi_skip", dtype=dtype)([y, skip])
        y = layers.LeakyReLU(name="msi_act2", **lrelu)(y)
        msi_feat = msi_conv_last(y)

        z = layers.Add(name="fuse_add", dtype=dtype)([msi_feat, hsi_feat])
        z = layers.LeakyReLU(name="fuse_act", **lrelu)(fuse_conv(z))
        z = final_block(z)
        outputs = last_conv(z)
        if global_skip:  # not in the official network (docs/differences.md)
            outputs = add_global_skip(
                global_skip, scale, lr_hsi, hr_msi, outputs, dtype, residual_scale
            )

        super().__init__(
            inputs={"lr_hsi": lr_hsi, "hr_msi": hr_msi}, outputs=outputs, dtype=dtype, **kwargs
        )

        # Layer references (torch's Module forbids attributes before __init__).
        self.msi_down = msi_down
        self.hsi_up = hsi_up
        self.hsi_conv_first = hsi_conv_first
        self.hsi_blocks = hsi_blocks
        self.hsi_conv_last = hsi_conv_last
        self.msi_conv_first = msi_conv_first
        self.msi_blocks = msi_blocks
        self.msi_conv_last = msi_conv_last
        self.fuse_conv = fuse_conv
        self.final_block = final_block
        self.last_conv = last_conv

        # === Config ===
        self._keep_config(locals())
