"""Band and patch embeddings of MSST-Net, with learned, resizable position embeddings."""

import keras
from keras import layers, ops

from keras_hsifusion.layers._utils import layer_norm, register
from keras_hsifusion.layers.core import Conv2D, Dense
from keras_hsifusion.ops.resize import interpolate
from keras_hsifusion.utils.validation import check_choice, check_int, check_pair

POSITION_EMBEDDINGS = ("learned", None)


@register
class PositionEmbedding2D(layers.Layer):
    """Learned 2-D position embedding, bilinearly resized to the grid of its input.

    The table is learned at `reference_grid`; on a grid of another size it is resized with
    torch-exact bilinear interpolation (`align_corners=False`). On the reference grid the
    resize is the identity.

    Args:
        reference_grid: `(rows, columns)` of the grid the table is learned at.
        initializer: initializer of the table. Defaults to truncated normal, std 0.02 (the
            distribution the official MSST-Net draws its per-call embeddings from).
        **kwargs: base layer keyword arguments, e.g. `name`, `dtype`.

    Input shape: `(B, rows, columns, D)`. Output shape: the same (input plus embedding).

    Examples:
    >>> pe = PositionEmbedding2D(reference_grid=(16, 16))
    >>> tuple(pe(keras.ops.zeros((1, 8, 12, 32))).shape)  # the table resized to 8 x 12
    (1, 8, 12, 32)
    """

    def __init__(self, reference_grid, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.reference_grid = check_pair("reference_grid", reference_grid)
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, input_shape):
        self.embedding = self.add_weight(
            name="embedding",
            shape=(1, *self.reference_grid, input_shape[-1]),
            initializer=self.initializer,
            trainable=True,
        )

    def call(self, x):
        shape = ops.shape(x)
        table = ops.cast(self.embedding, x.dtype)
        table = interpolate(table, size=(shape[1], shape[2]), mode="bilinear")
        return x + table

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reference_grid": list(self.reference_grid),
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config


class _Embedding(layers.Layer):
    """Shared part of the band and patch embeddings: conv -> LayerNorm -> + position."""

    def __init__(self, embed_dim, position_embedding="learned", reference_grid=(16, 16), **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = check_int("embed_dim", embed_dim)
        self.position_embedding = check_choice(
            "position_embedding", position_embedding, POSITION_EMBEDDINGS
        )
        self.reference_grid = check_pair("reference_grid", reference_grid)
        self.norm = layer_norm("norm", self.dtype_policy)
        self.position = None
        if position_embedding == "learned":
            self.position = PositionEmbedding2D(
                self.reference_grid, dtype=self.dtype_policy, name="position"
            )

    def _build_tail(self, embedded_shape):
        self.norm.build(embedded_shape)
        if self.position is not None:
            self.position.build(embedded_shape)

    def _tail(self, x):
        x = self.norm(x)
        if self.position is not None:
            x = self.position(x)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "position_embedding": self.position_embedding,
                "reference_grid": list(self.reference_grid),
            }
        )
        return config


@register
class BandEmbedding(_Embedding):
    """MSST-Net band embedding: 1x1 conv to `embed_dim` channels, LayerNorm, + position.

    Paper: Jia, Min and Fu, MSST-Net, Information Fusion 2023 (official `BandEmbed`). The
    official code adds a new random position embedding on every call; here it is learned at
    `reference_grid` and resized (see docs/differences.md, MSST-Net 2).

    Args:
        embed_dim: number of embedded channels `D`.
        position_embedding: `"learned"` (default) or `None` (no position embedding).
        reference_grid: `(h, w)` pixel grid the position table is learned at. Default
            `(16, 16)`, the official LR training patch.
        **kwargs: base layer keyword arguments.

    Input shape: `(B, h, w, C)`. Output shape: `(B, h, w, embed_dim)`.

    Examples:
    >>> emb = BandEmbedding(32)
    >>> tuple(emb(keras.ops.zeros((2, 5, 7, 31))).shape)
    (2, 5, 7, 32)
    """

    def __init__(self, embed_dim, position_embedding="learned", reference_grid=(16, 16), **kwargs):
        super().__init__(embed_dim, position_embedding, reference_grid, **kwargs)
        self.embed = Dense(embed_dim, dtype=self.dtype_policy, name="embed")

    def build(self, input_shape):
        self.embed.build(input_shape)
        self._build_tail((*input_shape[:-1], self.embed_dim))

    def call(self, x):
        return self._tail(self.embed(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.embed_dim)


@register
class PatchEmbedding(_Embedding):
    """MSST-Net patch embedding: `p x p` conv with stride `p`, LayerNorm, + position.

    Paper: Jia, Min and Fu, MSST-Net, Information Fusion 2023 (official `PatchEmbed`). The
    position table is learned at `reference_grid` (in patches) and resized when the patch grid
    differs (see docs/differences.md, MSST-Net 2).

    Args:
        embed_dim: number of embedded channels `D`.
        patch_size: side `p` of the square patches; the input sides must be multiples of it
            (as in the official code, rows/columns past the last full patch are dropped).
        position_embedding: `"learned"` (default) or `None`.
        reference_grid: `(rows, columns)` patch grid the position table is learned at.
            Default `(8, 8)`: a 128x128 training patch with `p = 16`.
        **kwargs: base layer keyword arguments.

    Input shape: `(B, H, W, C)`. Output shape: `(B, H // p, W // p, embed_dim)`.

    Examples:
    >>> patches = PatchEmbedding(64, patch_size=16)(keras.ops.zeros((1, 64, 96, 31)))
    >>> tuple(patches.shape)  # a 4 x 6 grid of 16 x 16 patches
    (1, 4, 6, 64)
    """

    def __init__(
        self,
        embed_dim,
        patch_size,
        position_embedding="learned",
        reference_grid=(8, 8),
        **kwargs,
    ):
        super().__init__(embed_dim, position_embedding, reference_grid, **kwargs)
        self.patch_size = check_int("patch_size", patch_size)
        self.embed = Conv2D(
            embed_dim,
            patch_size,
            strides=patch_size,
            padding="valid",
            dtype=self.dtype_policy,
            name="embed",
        )

    def build(self, input_shape):
        self.embed.build(input_shape)
        self._build_tail(self.compute_output_shape(input_shape))

    def call(self, x):
        return self._tail(self.embed(x))

    def compute_output_shape(self, input_shape):
        b, h, w = input_shape[:3]
        p = self.patch_size
        return (b, None if h is None else h // p, None if w is None else w // p, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config["patch_size"] = self.patch_size
        return config
