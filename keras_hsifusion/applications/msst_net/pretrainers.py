"""MBAE and MPAE: MSST-Net's masked autoencoders for self-supervised encoder pretraining."""

import keras

from keras_hsifusion.applications.msst_net._layers import (
    MSSTCrop,
    MSSTPad,
    RandomChannelMask,
    RandomTokenMask,
    layer_norm,
)
from keras_hsifusion.layers.core import Conv2DTranspose, Dense, register
from keras_hsifusion.layers.embeddings import (
    POSITION_EMBEDDINGS,
    BandEmbedding,
    PatchEmbedding,
    PositionEmbedding2D,
)
from keras_hsifusion.layers.spat import SpaT
from keras_hsifusion.layers.spet import SpeT
from keras_hsifusion.utils.config import ConstructorConfig
from keras_hsifusion.utils.validation import check_choice, check_int, check_pair


def _check_common(embed_dim, heads, num_layers, decoder_num_layers, mask_ratio, position):
    """Checks the arguments MBAE and MPAE share; returns `mask_ratio` as a float."""
    check_int("embed_dim", embed_dim, minimum=2)
    check_int("heads", heads)
    check_int("num_layers", num_layers)
    check_int("decoder_num_layers", decoder_num_layers)
    check_choice("position_embedding", position, POSITION_EMBEDDINGS)
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)):
        mask_ratio = -1
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1). Received: mask_ratio={mask_ratio!r}")
    return float(mask_ratio)


def _encode_decode(x, transformer, embed_dim, heads, layers, position_grid, dtype):
    """encoder -> LayerNorm -> linear D -> D/2 (+ position at `position_grid`, unless None) ->
    decoder -> linear D/2 -> D -> LayerNorm; `layers`: (encoder, decoder) blocks."""
    # Layers are made in the order of the graph: unseeded initializers draw their seeds then.
    kw = {"dtype": dtype}
    x = transformer(heads, layers[0], name="encoder", **kw)(x)
    x = layer_norm("norm1", dtype)(x)
    x = Dense(embed_dim // 2, name="proj", **kw)(x)
    if position_grid is not None:
        x = PositionEmbedding2D(position_grid, name="decoder_position", **kw)(x)
    x = transformer(heads, layers[1], name="decoder", **kw)(x)
    x = Dense(embed_dim, name="reconstruction", **kw)(x)
    return layer_norm("norm2", dtype)(x)


class _MaskedAutoencoder(ConstructorConfig, keras.Model):
    """Shared base of MBAE and MPAE: config from the constructor (`ConstructorConfig`)."""


@register
class MBAE(_MaskedAutoencoder):
    """Masked band autoencoder: self-supervised pretraining of an MSST-Net `SpeT` encoder.

    Paper: Jia, Min and Fu, MSST-Net, Information Fusion 2023, Sec. "MBAE". Official code:
    `MBAEViT` in `model/HSI/mbae.py` of https://github.com/jx-mzc/MSST-Net.

    band embedding (+ position) -> mask `round(mask_ratio * D)` embedded channels (training
    only, a new seeded random mask every step) -> `SpeT` encoder -> LayerNorm -> linear
    `D -> D/2` (+ position) -> `SpeT` decoder -> linear `D/2 -> D` -> LayerNorm -> 1x1 conv back
    to the bands. Train it with an MSE loss against its own input; the `"encoder"` layer is
    what `MSSTNet.load_pretrained_encoders` transfers.

    Args:
        hsi_bands: bands `C` of the input LR-HSI.
        embed_dim: embedding width `D` (MSST-Net's three scales use `D, D/2, 2D`).
        heads: SpeT heads of encoder and decoder. Default 4.
        num_layers: encoder blocks. Default 4.
        mask_ratio: fraction of embedded channels masked while training. Default 0.75.
        decoder_num_layers: decoder blocks. Default 2 (as the official code).
        position_embedding: `"learned"` (default) or None.
        reference_size: `(h, w)` grid the position embeddings are learned at. Default (16, 16).
        seed: seed of the masking. Default None.
        dtype: dtype policy. name: model name.

    Input: `(B, h, w, C)`. Output: its reconstruction, `(B, h, w, C)`.

    Examples:
    >>> mbae = MBAE(hsi_bands=31, embed_dim=16, num_layers=1, decoder_num_layers=1)
    >>> mbae.compile(optimizer="adam", loss="mse")  # then `mbae.fit(lr_hsi, lr_hsi, ...)`
    >>> type(mbae.get_layer("encoder")).__name__, mbae.output_shape
    ('SpeT', (None, None, None, 31))
    """

    def __init__(
        self,
        hsi_bands,
        embed_dim,
        heads=4,
        num_layers=4,
        mask_ratio=0.75,
        decoder_num_layers=2,
        position_embedding="learned",
        reference_size=(16, 16),
        seed=None,
        dtype=None,
        name="mbae",
        **kwargs,
    ):
        check_int("hsi_bands", hsi_bands)
        mask_ratio = _check_common(
            embed_dim, heads, num_layers, decoder_num_layers, mask_ratio, position_embedding
        )
        reference_size = check_pair("reference_size", reference_size)
        position_grid = reference_size if position_embedding else None
        kw = {"dtype": dtype}

        # === Functional Model ===
        inputs = keras.Input(shape=(None, None, hsi_bands), name="lr_hsi")
        (x,) = MSSTPad(1, heads, 1, name="pad", **kw)([inputs])
        x = BandEmbedding(embed_dim, position_embedding, reference_size, name="embed", **kw)(x)
        x = RandomChannelMask(mask_ratio, seed=seed, name="mask", **kw)(x)
        x = _encode_decode(
            x, SpeT, embed_dim, heads, (num_layers, decoder_num_layers), position_grid, dtype
        )
        x = Dense(hsi_bands, name="unembed", **kw)(x)
        outputs = MSSTCrop(1, name="crop", **kw)([x, inputs])
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=dtype, **kwargs)

        # === Config ===
        self._keep_config(locals())


@register
class MPAE(_MaskedAutoencoder):
    """Masked patch autoencoder: self-supervised pretraining of an MSST-Net `SpaT` encoder.

    Paper: Jia, Min and Fu, MSST-Net, Information Fusion 2023, Sec. "MPAE". Official code:
    `MPAEViT` in `model/MSI/mpae.py` of https://github.com/jx-mzc/MSST-Net.

    patch embedding (+ position) -> mask `round(mask_ratio * tokens)` patch tokens (training
    only, a new seeded random mask every step) -> `SpaT` encoder -> LayerNorm -> linear
    `D -> D/2` (+ position) -> `SpaT` decoder -> linear `D/2 -> D` -> LayerNorm -> transposed
    conv back to the image. Train it with an MSE loss against its own input. Images whose
    sides are not multiples of `patch_size` are reflect-padded and cropped back.

    Args:
        msi_bands: bands of the input image.
        embed_dim: token width `D`; `heads` must divide `D / 2`.
        patch_size: patch side `p` (MSST-Net's three scales use `p, p/2, 2p`).
        heads: SpaT heads of encoder and decoder. Default 4.
        num_layers: encoder blocks. Default 4.
        mask_ratio: fraction of tokens masked while training. Default 0.5.
        decoder_num_layers: decoder blocks. Default 2 (as the official code).
        position_embedding: `"learned"` (default) or None.
        reference_size: `(H, W)` image size the position embeddings are learned at (the grid
            is that divided by `patch_size`, rounded up). Default (128, 128).
        seed: seed of the masking. Default None.
        dtype: dtype policy. name: model name.

    Input: `(B, H, W, c)`. Output: its reconstruction, `(B, H, W, c)`.

    Examples:
    >>> mpae = MPAE(msi_bands=3, embed_dim=16, patch_size=8, num_layers=1)
    >>> type(mpae.get_layer("encoder")).__name__, mpae.output_shape  # any H, W
    ('SpaT', (None, None, None, 3))
    """

    def __init__(
        self,
        msi_bands,
        embed_dim,
        patch_size,
        heads=4,
        num_layers=4,
        mask_ratio=0.5,
        decoder_num_layers=2,
        position_embedding="learned",
        reference_size=(128, 128),
        seed=None,
        dtype=None,
        name="mpae",
        **kwargs,
    ):
        check_int("msi_bands", msi_bands)
        check_int("patch_size", patch_size)
        mask_ratio = _check_common(
            embed_dim, heads, num_layers, decoder_num_layers, mask_ratio, position_embedding
        )
        if embed_dim % heads or (embed_dim // 2) % heads:
            raise ValueError(
                "`heads` must divide `embed_dim` and `embed_dim // 2`. "
                f"Received: embed_dim={embed_dim}, heads={heads}"
            )
        reference_size = check_pair("reference_size", reference_size)
        grid = [-(-s // patch_size) for s in reference_size]
        kw = {"dtype": dtype}

        # === Functional Model ===
        inputs = keras.Input(shape=(None, None, msi_bands), name="hr_msi")
        (x,) = MSSTPad(patch_size, 1, 1, name="pad", **kw)([inputs])
        x = PatchEmbedding(embed_dim, patch_size, position_embedding, grid, name="embed", **kw)(x)
        x = RandomTokenMask(mask_ratio, seed=seed, name="mask", **kw)(x)
        x = _encode_decode(
            x,
            SpaT,
            embed_dim,
            heads,
            (num_layers, decoder_num_layers),
            grid if position_embedding else None,
            dtype,
        )
        x = Conv2DTranspose(
            msi_bands, patch_size, strides=patch_size, padding="valid", name="unembed", **kw
        )(x)
        outputs = MSSTCrop(1, name="crop", **kw)([x, inputs])
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=dtype, **kwargs)

        # === Config ===
        self._keep_config(locals())
