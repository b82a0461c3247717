"""MBAE and MPAE: MSST-Net's masked autoencoders for self-supervised encoder pretraining."""

import keras
from keras import layers

from keras_hsifusion.applications.msst_net._layers import (
    MSSTCrop,
    MSSTPad,
    RandomChannelMask,
    RandomTokenMask,
)
from keras_hsifusion.applications.msst_net.msst_net import (
    _check_int,
    _check_position_embedding,
    _check_size,
)
from keras_hsifusion.layers.core import Conv2DTranspose, Dense
from keras_hsifusion.layers.embeddings import BandEmbedding, PatchEmbedding, PositionEmbedding2D
from keras_hsifusion.layers.spat import SpaT
from keras_hsifusion.layers.spet import SpeT


def _check_ratio(mask_ratio):
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)):
        mask_ratio = -1
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"`mask_ratio` must be in [0, 1). Received: mask_ratio={mask_ratio!r}")
    return float(mask_ratio)


class _MaskedAutoencoder(keras.Model):
    """Shared config handling of MBAE and MPAE."""

    _CONFIG_KEYS = ()

    def get_config(self):
        config = {key: getattr(self, key) for key in self._CONFIG_KEYS}
        config["reference_size"] = list(self.reference_size)
        config["dtype"] = keras.dtype_policies.serialize(self.dtype_policy)
        config["name"] = self.name
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class MBAE(_MaskedAutoencoder):
    """Masked band autoencoder: self-supervised pretraining of an MSST-Net `SpeT` encoder.

    Paper: Ma et al., Information Fusion 2023, Sec. "MBAE". Official code: `MBAEViT` in
    `model/HSI/mbae.py` of https://github.com/jx-mzc/MSST-Net.

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
    >>> mbae = MBAE(hsi_bands=31, embed_dim=32, num_layers=1)
    >>> mbae.compile(optimizer="adam", loss="mse")
    >>> x = keras.random.uniform((2, 16, 16, 31))
    >>> _ = mbae.fit(x, x, epochs=1, verbose=0)
    """

    _CONFIG_KEYS = (
        "hsi_bands",
        "embed_dim",
        "heads",
        "num_layers",
        "mask_ratio",
        "decoder_num_layers",
        "position_embedding",
        "seed",
    )

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
        for arg, value, minimum in (
            ("hsi_bands", hsi_bands, 1),
            ("embed_dim", embed_dim, 2),
            ("heads", heads, 1),
            ("num_layers", num_layers, 1),
            ("decoder_num_layers", decoder_num_layers, 1),
        ):
            _check_int(arg, value, minimum)
        mask_ratio = _check_ratio(mask_ratio)
        _check_position_embedding(position_embedding)
        reference_size = _check_size("reference_size", reference_size)
        kw = {"dtype": dtype}

        # === Functional Model ===
        inputs = keras.Input(shape=(None, None, hsi_bands), name="lr_hsi")
        (x,) = MSSTPad(1, heads, 1, name="pad", **kw)([inputs])
        x = BandEmbedding(
            embed_dim,
            position_embedding=position_embedding,
            reference_grid=reference_size,
            name="embed",
            **kw,
        )(x)
        x = RandomChannelMask(mask_ratio, seed=seed, name="mask", **kw)(x)
        x = SpeT(heads, num_layers, name="encoder", **kw)(x)
        x = layers.LayerNormalization(epsilon=1e-5, name="norm1", **kw)(x)
        x = Dense(embed_dim // 2, name="proj", **kw)(x)
        if position_embedding is not None:
            x = PositionEmbedding2D(reference_size, name="decoder_position", **kw)(x)
        x = SpeT(heads, decoder_num_layers, name="decoder", **kw)(x)
        x = Dense(embed_dim, name="reconstruction", **kw)(x)
        x = layers.LayerNormalization(epsilon=1e-5, name="norm2", **kw)(x)
        x = Dense(hsi_bands, name="unembed", **kw)(x)
        outputs = MSSTCrop(1, name="crop", **kw)([x, inputs])
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=dtype, **kwargs)

        # === Config ===
        self.hsi_bands = hsi_bands
        self.embed_dim = embed_dim
        self.heads = heads
        self.num_layers = num_layers
        self.mask_ratio = mask_ratio
        self.decoder_num_layers = decoder_num_layers
        self.position_embedding = position_embedding
        self.reference_size = reference_size
        self.seed = seed


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class MPAE(_MaskedAutoencoder):
    """Masked patch autoencoder: self-supervised pretraining of an MSST-Net `SpaT` encoder.

    Paper: Ma et al., Information Fusion 2023, Sec. "MPAE". Official code: `MPAEViT` in
    `model/MSI/mpae.py` of https://github.com/jx-mzc/MSST-Net.

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
    >>> mpae = MPAE(msi_bands=3, embed_dim=64, patch_size=8, num_layers=1)
    >>> mpae(keras.random.uniform((1, 32, 40, 3))).shape
    (1, 32, 40, 3)
    """

    _CONFIG_KEYS = (
        "msi_bands",
        "embed_dim",
        "patch_size",
        "heads",
        "num_layers",
        "mask_ratio",
        "decoder_num_layers",
        "position_embedding",
        "seed",
    )

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
        for arg, value, minimum in (
            ("msi_bands", msi_bands, 1),
            ("embed_dim", embed_dim, 2),
            ("patch_size", patch_size, 1),
            ("heads", heads, 1),
            ("num_layers", num_layers, 1),
            ("decoder_num_layers", decoder_num_layers, 1),
        ):
            _check_int(arg, value, minimum)
        if embed_dim % heads or (embed_dim // 2) % heads:
            raise ValueError(
                "`heads` must divide `embed_dim` and `embed_dim // 2`. "
                f"Received: embed_dim={embed_dim}, heads={heads}"
            )
        mask_ratio = _check_ratio(mask_ratio)
        _check_position_embedding(position_embedding)
        reference_size = _check_size("reference_size", reference_size)
        grid = [-(-s // patch_size) for s in reference_size]
        kw = {"dtype": dtype}

        # === Functional Model ===
        inputs = keras.Input(shape=(None, None, msi_bands), name="hr_msi")
        (x,) = MSSTPad(patch_size, 1, 1, name="pad", **kw)([inputs])
        x = PatchEmbedding(
            embed_dim,
            patch_size,
            position_embedding=position_embedding,
            reference_grid=grid,
            name="embed",
            **kw,
        )(x)
        x = RandomTokenMask(mask_ratio, seed=seed, name="mask", **kw)(x)
        x = SpaT(heads, num_layers, name="encoder", **kw)(x)
        x = layers.LayerNormalization(epsilon=1e-5, name="norm1", **kw)(x)
        x = Dense(embed_dim // 2, name="proj", **kw)(x)
        if position_embedding is not None:
            x = PositionEmbedding2D(grid, name="decoder_position", **kw)(x)
        x = SpaT(heads, decoder_num_layers, name="decoder", **kw)(x)
        x = Dense(embed_dim, name="reconstruction", **kw)(x)
        x = layers.LayerNormalization(epsilon=1e-5, name="norm2", **kw)(x)
        x = Conv2DTranspose(
            msi_bands, patch_size, strides=patch_size, padding="valid", name="unembed", **kw
        )(x)
        outputs = MSSTCrop(1, name="crop", **kw)([x, inputs])
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=dtype, **kwargs)

        # === Config ===
        self.msi_bands = msi_bands
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.heads = heads
        self.num_layers = num_layers
        self.mask_ratio = mask_ratio
        self.decoder_num_layers = decoder_num_layers
        self.position_embedding = position_embedding
        self.reference_size = reference_size
        self.seed = seed
