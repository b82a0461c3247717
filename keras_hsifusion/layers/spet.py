"""SpeT: MSST-Net's spectral transformer stack."""

from keras import ops

from keras_hsifusion.layers._token_transformer import TokenTransformer
from keras_hsifusion.layers._utils import register


@register
class SpeT(TokenTransformer):
    """Spectral transformer stack of MSST-Net (the official `SpeTL`).

    Paper: Jia, Min and Fu, "Multiscale spatial-spectral transformer network for hyperspectral
    and multispectral image fusion" (MSST-Net), Information Fusion 96, 2023.

    Each of the `num_layers` blocks is LayerNorm -> spectral attention -> residual ->
    LayerNorm -> 1x1-conv MLP (`mlp_ratio`, GELU) -> residual. Spectral attention is a
    `D x D` attention between the embedded bands: the `h * w` pixels are split among the
    `heads` by interleaving (pixel `i` goes to head `i mod heads`), each head attends over its
    pixels' features, the scale is `D ** -0.5` (the full embedding width, as in the official
    code), and the pixels are put back in place.

    Args:
        heads: number of heads, among which the pixels are split; it must divide the pixel
            count `h * w` of the input. Default 4.
        num_layers: number of blocks. Default 4.
        mlp_ratio: hidden width of the MLP over `D`. Default 4.
        **kwargs: base layer keyword arguments, e.g. `name`, `dtype`.

    Input shape: `(B, h, w, D)` band embeddings. Output shape: the same.

    Examples:
    >>> spet = SpeT(heads=5, num_layers=1)  # 5 heads of 7 pixels each
    >>> tuple(spet(keras.random.normal((2, 5, 7, 32))).shape)
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
