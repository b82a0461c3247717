"""MSST-Net: multiscale spatial-spectral transformer network for HSI/MSI fusion."""

import math

import keras
from keras import layers

from keras_hsifusion.applications.fusion_model import FusionModel
from keras_hsifusion.applications.msst_net._layers import (
    BranchWeights,
    MSSTCrop,
    MSSTPad,
    PixelShuffle,
    layer_norm,
)
from keras_hsifusion.applications.msst_net.pretrainers import MBAE, MPAE
from keras_hsifusion.layers.core import Conv2D, Conv2DTranspose, Dense, register
from keras_hsifusion.layers.embeddings import POSITION_EMBEDDINGS, BandEmbedding, PatchEmbedding
from keras_hsifusion.layers.global_skip import (
    add_global_skip,
    check_global_skip,
    check_residual_scale,
)
from keras_hsifusion.layers.interpolate import Interpolate
from keras_hsifusion.layers.spat import SpaT
from keras_hsifusion.layers.spet import SpeT
from keras_hsifusion.utils.files import load_keras_file
from keras_hsifusion.utils.validation import check_choice, check_int, check_pair, lcm


def _load_model(model, what):
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        return load_keras_file(model, compile=False, what=f"`{what}`")
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`{what}` must be a keras Model or the path of a `.keras` file. "
            f"Received: {type(model).__name__}"
        )
    return model


@register
class MSSTNet(FusionModel):
    """MSST-Net, multiscale spatial-spectral transformer network for HSI/MSI fusion.

    Paper: Jia, Min and Fu, "Multiscale spatial-spectral transformer network for hyperspectral
    and multispectral image fusion", Information Fusion 96 (2023) 117-129.
    Official code: https://github.com/jx-mzc/MSST-Net (`model/net.py`, class `Net`).

    An LR branch (shallow conv of `[lr_hsi, bilinear-down hr_msi]`, ResBlocks) is refined by
    three spectral transformers (`SpeT`) on band embeddings of width `D, D/2, 2D` and
    upsampled by pixel shuffle; an HR branch (shallow conv of `[bilinear-up lr_hsi, hr_msi]`,
    ResBlocks) is refined by three spatial transformers (`SpaT`) on patch embeddings of size
    `p, p/2, 2p`; both are fused by two convolutions. The four bugs of the official release
    are fixed as described in docs/differences.md (MSST-Net 1-4).

    Any spatial size works: the inputs are reflect-padded inside the model so that every
    patch size divides the HR image and `hsi_heads` divides the LR pixel count, and the
    output is cropped back. Sizes the official code accepts are not padded.

    Args:
        hsi_bands: bands `C` of the hyperspectral image.
        msi_bands: bands `c` of the multispectral image.
        scale: integer resolution ratio between `hr_msi` and `lr_hsi`. Default 8.
        n_feats: width of the convolutional branches. Default 64.
        hsi_embed_dim: band embedding width `D` (scales use `D, D // 2, 2 * D`). Default 32.
        msi_embed_dim: patch embedding width. Default 256.
        hsi_heads: SpeT heads (pixels are split among them). Default 4.
        msi_heads: SpaT heads; must divide `msi_embed_dim`. Default 4.
        patch_size: base patch size `p` (scales use `p, p // 2, 2 * p`). Default 16.
        hsi_res_blocks: ResBlocks of the LR branch. Default 5.
        msi_res_blocks: ResBlocks of the HR branch. Default 5.
        hsi_num_layers: blocks per SpeT. Default 4.
        msi_num_layers: blocks per SpaT. Default 4.
        position_embedding: `"learned"` (default) for learned position embeddings at the
            reference grid, resized to other grids; `None` for none.
        reference_size: `(h, w)` of the LR training patch the position embeddings are learned
            at; the HR grid is `scale` times larger. Default `(16, 16)` (official: 16x16 LR,
            128x128 HR at x8).
        global_skip: None (default: the official network), `"bicubic"` or
            `"detail_injection"`: the output becomes that parameter-free estimate
            (`layers.GlobalSkip`) plus the network's output times a trainable gate that starts
            at 0.01 (`layers.ResidualGate`), so the network learns the residual over the
            estimate (not in the official network: docs/differences.md).
        residual_scale: the fixed gate of the network's output over the `global_skip`
            estimate (default 0.01; the robust presets use a larger one, see their cards).
        dtype: dtype policy of the layers.
        name: model name.

    Inputs: `{"lr_hsi": (B, h, w, C), "hr_msi": (B, scale*h, scale*w, c)}`.
    Output: `(B, scale*h, scale*w, C)`.

    Examples:
    `MSSTNet(hsi_bands=31, msi_bands=3, scale=8)` is the official CAVE x8 network; a tiny
    one, called as `model({"lr_hsi": lr, "hr_msi": hr})` on `(B, h, w, 8)` and
    `(B, 4h, 4w, 3)` inputs:
    >>> model = MSSTNet(8, 3, scale=4, n_feats=8, msi_embed_dim=16, patch_size=4,
    ...                 hsi_num_layers=1, msi_num_layers=1)
    >>> model.output_shape, model.count_params()  # (B, 4h, 4w, 8) for any h, w
    ((None, None, None, 8), 180318)
    """

    # Tiled inference (`fuse`): default HR tile and overlap (measured: docs/fuse.md).
    fuse_tile = 256
    fuse_overlap = 64

    @property
    def fuse_multiple(self):
        """HR alignment of `fuse` tiles: the sizes `MSSTPad` leaves unpadded (every patch
        size divides the HR tile, `hsi_heads` divides the LR rows)."""
        patches = lcm(self.patch_size, self.patch_size // 2, self.patch_size * 2)
        lr_multiple = patches // math.gcd(patches, self.scale)
        return self.scale * lcm(lr_multiple, self.hsi_heads)

    def __init__(
        self,
        hsi_bands,
        msi_bands,
        scale=8,
        n_feats=64,
        hsi_embed_dim=32,
        msi_embed_dim=256,
        hsi_heads=4,
        msi_heads=4,
        patch_size=16,
        hsi_res_blocks=5,
        msi_res_blocks=5,
        hsi_num_layers=4,
        msi_num_layers=4,
        position_embedding="learned",
        reference_size=(16, 16),
        global_skip=None,
        residual_scale=0.01,
        dtype=None,
        name="msst_net",
        **kwargs,
    ):
        for arg, value, minimum in (
            ("hsi_bands", hsi_bands, 1),
            ("msi_bands", msi_bands, 1),
            ("scale", scale, 1),
            ("n_feats", n_feats, 1),
            ("hsi_embed_dim", hsi_embed_dim, 2),
            ("msi_embed_dim", msi_embed_dim, 1),
            ("hsi_heads", hsi_heads, 1),
            ("msi_heads", msi_heads, 1),
            ("patch_size", patch_size, 2),
            ("hsi_res_blocks", hsi_res_blocks, 0),
            ("msi_res_blocks", msi_res_blocks, 0),
            ("hsi_num_layers", hsi_num_layers, 1),
            ("msi_num_layers", msi_num_layers, 1),
        ):
            check_int(arg, value, minimum)
        if msi_embed_dim % msi_heads:
            raise ValueError(
                "`msi_embed_dim` must be divisible by `msi_heads`. "
                f"Received: msi_embed_dim={msi_embed_dim}, msi_heads={msi_heads}"
            )
        check_choice("position_embedding", position_embedding, POSITION_EMBEDDINGS)
        check_global_skip(global_skip)
        check_residual_scale(residual_scale)
        reference_size = check_pair("reference_size", reference_size)

        band_dims = (hsi_embed_dim, hsi_embed_dim // 2, hsi_embed_dim * 2)
        patch_sizes = (patch_size, patch_size // 2, patch_size * 2)
        patch_lcm = lcm(*patch_sizes)
        lr_multiple = patch_lcm // math.gcd(patch_lcm, scale)
        hr_reference = [scale * s for s in reference_size]
        kw = {"dtype": dtype}

        # === Layers ===
        pad = MSSTPad(lr_multiple, hsi_heads, scale, name="pad", **kw)
        upsample_lr = Interpolate(float(scale), "bilinear", name="lr_hsi_up", **kw)
        downsample_hr = Interpolate(1.0 / scale, "bilinear", name="hr_msi_down", **kw)
        shallow1 = Conv2D(n_feats, 3, padding="same", name="shallow1", **kw)
        shallow2 = Conv2D(n_feats, 3, padding="same", name="shallow2", **kw)

        def res_blocks(x, count, prefix):
            skip = x
            for i in range(count):
                y = Conv2D(n_feats, 3, padding="same", name=f"{prefix}_{i}_conv1", **kw)(x)
                y = layers.ReLU(name=f"{prefix}_{i}_relu", **kw)(y)
                y = Conv2D(n_feats, 3, padding="same", name=f"{prefix}_{i}_conv2", **kw)(y)
                x = layers.Add(name=f"{prefix}_{i}_add", **kw)([y, x])
            return layers.Add(name=f"{prefix}_skip", **kw)([skip, x])

        # === Functional Model ===
        lr_hsi = keras.Input(shape=(None, None, hsi_bands), name="lr_hsi")
        hr_msi = keras.Input(shape=(None, None, msi_bands), name="hr_msi")
        lr, hr = pad([lr_hsi, hr_msi])
        lr_up = upsample_lr(lr)
        hr_down = downsample_hr(hr)

        # LR branch.
        z = shallow1(layers.Concatenate(name="lr_concat", **kw)([lr, hr_down]))
        z = res_blocks(z, hsi_res_blocks, "rb1")
        z = Conv2D(hsi_bands, 3, padding="same", name="conv_tail1", **kw)(z)
        # HR branch.
        x = shallow2(layers.Concatenate(name="hr_concat", **kw)([lr_up, hr]))
        x = res_blocks(x, msi_res_blocks, "rb2")
        x = Conv2D(hsi_bands, 3, padding="same", name="conv_tail2", **kw)(x)

        # Spectral transformers on three band-embedding widths (official scales 1, 2, 3).
        # Each scale has its own norm/conv/embedding: docs/differences.md, MSST-Net 1.
        spectral = []
        for k, dim in enumerate(band_dims, start=1):
            label = f"band_embedding_{k}"
            t = BandEmbedding(dim, position_embedding, reference_size, name=label, **kw)(z)
            t = SpeT(hsi_heads, hsi_num_layers, name=f"spectral_layers_{k}", **kw)(t)
            t = layer_norm(f"spectral_norm_{k}", dtype)(t)
            t = Dense(hsi_bands, name=f"band_unembed_{k}", **kw)(t)
            t = Conv2D(hsi_bands, 3, padding="same", name=f"spectral_conv_{k}", **kw)(t)
            spectral.append(t)
        z_hsi = BranchWeights(("a", "b", "c"), name="spectral_weights", **kw)(spectral)
        z = layers.Add(name="spectral_add", **kw)([z, z_hsi])
        z = Conv2D(n_feats, 3, padding="same", name="upsample_conv1", **kw)(z)
        z = layers.Activation("gelu", name="upsample_gelu", **kw)(z)
        z = Conv2D(scale * scale * n_feats, 3, padding="same", name="upsample_conv2", **kw)(z)
        z = PixelShuffle(scale, name="upsample_shuffle", **kw)(z)
        z = Conv2D(hsi_bands, 3, padding="same", name="upsample_conv3", **kw)(z)

        # Spatial transformers on three patch sizes (official scales 16, 8, 32 at p = 16).
        spatial = []
        for k, p in enumerate(patch_sizes, start=1):
            grid, label = [-(-s // p) for s in hr_reference], f"patch_embedding_{k}"
            t = PatchEmbedding(msi_embed_dim, p, position_embedding, grid, name=label, **kw)(x)
            t = SpaT(msi_heads, msi_num_layers, name=f"spatial_layers_{k}", **kw)(t)
            t = layer_norm(f"spatial_norm_{k}", dtype)(t)
            t = Conv2DTranspose(
                hsi_bands, p, strides=p, padding="valid", name=f"patch_unembed_{k}", **kw
            )(t)
            t = Conv2D(
                hsi_bands, 3, padding="same", use_bias=False, name=f"spatial_conv_{k}", **kw
            )(t)
            spatial.append(t)
        x_msi = BranchWeights(("a1", "b1", "c1"), name="spatial_weights", **kw)(spatial)
        x = layers.Add(name="spatial_add", **kw)([x, x_msi])

        y = layers.Concatenate(name="recon_concat", **kw)([z, x])
        y = Conv2D(n_feats, 3, padding="same", name="recon_conv1", **kw)(y)
        y = layers.Activation("gelu", name="recon_gelu", **kw)(y)
        y = Conv2D(hsi_bands, 3, padding="same", name="recon_conv2", **kw)(y)
        outputs = MSSTCrop(scale, name="crop", **kw)([y, lr_hsi])
        if global_skip:  # not in the official network (docs/differences.md)
            outputs = add_global_skip(
                global_skip, scale, lr_hsi, hr_msi, outputs, dtype, residual_scale
            )
        super().__init__(
            inputs={"lr_hsi": lr_hsi, "hr_msi": hr_msi},
            outputs=outputs,
            name=name,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self._keep_config(locals())

    def load_pretrained_encoders(self, mbae=None, mpae=None):
        """Copies pretrained MBAE/MPAE encoders into the SpeT/SpaT stacks of each scale.

        Each scale gets its own autoencoder's encoder (the official fine-tuning loads the
        patch-16 MPAE into all three spatial scales: docs/differences.md, MSST-Net 4).

        Args:
            mbae: three `MBAE` models (or `.keras` paths) with `embed_dim`
                `hsi_embed_dim, hsi_embed_dim // 2, 2 * hsi_embed_dim`, or None.
            mpae: three `MPAE` models (or `.keras` paths) with `embed_dim = msi_embed_dim`
                and `patch_size` `p, p // 2, 2 * p`, or None.

        Raises:
            ValueError: if a model is of the wrong kind or its encoder does not fit.
        """
        pairs = []
        specs = (
            (
                "mbae",
                mbae,
                MBAE,
                "spectral_layers",
                [
                    {"embed_dim": d, "heads": self.hsi_heads, "num_layers": self.hsi_num_layers}
                    for d in (self.hsi_embed_dim, self.hsi_embed_dim // 2, self.hsi_embed_dim * 2)
                ],
            ),
            (
                "mpae",
                mpae,
                MPAE,
                "spatial_layers",
                [
                    {
                        "embed_dim": self.msi_embed_dim,
                        "patch_size": p,
                        "heads": self.msi_heads,
                        "num_layers": self.msi_num_layers,
                    }
                    for p in (self.patch_size, self.patch_size // 2, self.patch_size * 2)
                ],
            ),
        )
        for arg, models, cls, prefix, expected in specs:
            if models is None:
                continue
            if isinstance(models, (str, keras.Model)) or len(models) != 3:
                raise ValueError(
                    f"`{arg}` must be a sequence of three {cls.__name__} models or paths, one "
                    f"per scale. Received: {models!r}"
                )
            for k, (model, want) in enumerate(zip(models, expected, strict=True), start=1):
                what = f"{arg}[{k - 1}]"
                model = _load_model(model, what)
                if not isinstance(model, cls):
                    raise ValueError(
                        f"`{what}` must be a {cls.__name__}. Received: {type(model).__name__}"
                    )
                got = {key: getattr(model, key) for key in want}
                if got != want:
                    raise ValueError(
                        f"`{what}` does not fit scale {k} of this MSSTNet: expected {want}. "
                        f"Received: {got}"
                    )
                source = model.get_layer("encoder")
                target = self.get_layer(f"{prefix}_{k}")
                pairs += list(zip(target.weights, source.weights, strict=True))
        for target, source in pairs:
            target.assign(source)
