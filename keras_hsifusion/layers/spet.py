"""SpeT: MSST-Net's spectral transformer stack."""

import keras
from keras import ops

from keras_hsifusion.layers._token_transformer import TokenTransformer


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class SpeT(TokenTransformer):
    """Spectral transformer stack of MSST-Net (the official `SpeTL`).

    Paper: Ma et al., "Multiscale Spatial-Spectral Transformer Network for Hyperspectral and
    Multispectral Image Fusion", Information Fusion 2023.

    Each of the `num_layers` blocks is LayerNorm -> spectral attention -> residual ->
    LayerNorm -> 1x1-conv MLP (`mlp_ratio`, GELU) -> residual. Spectral attention is a
    `D x D` attention between the embedded bands: the `h * w` pixels are split among the
    `heads` by interleaving (pixel `i` goes to head `i mod heads`), each head attends over its
    pixels' features, the scale is `D ** -0.5` (the full embedding width, as in the official
    code), and the pixels are put back in place.

    Args:
        heads: number of heads; `heads` must divide `h * w` of the input. Default 4.
        num_layers: number of blocks. Default 4.
        mlp_ratio: hidden width of the MLP over `D`. Default 4.
        **kwargs: base layer keyword arguments, e.g. `name`, `dtype`.

    Input shape: `(B, h, w, D)` band embeddings. Output shape: the same.

    Examples:
    >>> spet = SpeT(heads=5, num_layers=2)
    >>> spet(keras.ops.zeros((2, 5, 7, 32))).shape
    (2, 5, 7, 32)
    """

    def _attend(self, qkv, b, n):
        d, heads = self.dim, self.heads
        qkv = ops.reshape(qkv, (b, n // heads, heads, 3, d))
        q, k, v = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]  # (b, n/heads, heads, d)
        attn = ops.einsum("bmhc,bmhe->bhce", q, k) * (float(d) ** -0.5)
        attn = ops.softmax(attn, axis=-1)
        out = ops.einsum("bhce,bmhe->bmhc", attn, v)
        return ops.reshape(out, (b, n, d))
