"""SpaT: MSST-Net's spatial transformer stack."""

from keras import ops

from keras_hsifusion.layers._token_transformer import TokenTransformer
from keras_hsifusion.layers._utils import register
from keras_hsifusion.ops.attention import attention


@register
class SpaT(TokenTransformer):
    """Spatial transformer stack of MSST-Net (the official `SpaTL`).

    Paper: Jia, Min and Fu, "Multiscale spatial-spectral transformer network for hyperspectral
    and multispectral image fusion" (MSST-Net), Information Fusion 96, 2023.

    Each of the `num_layers` blocks is LayerNorm -> global multi-head self-attention over all
    patch tokens (head width `D / heads`, scale `(D / heads) ** -0.5`) -> residual ->
    LayerNorm -> 1x1-conv MLP (`mlp_ratio`, GELU) -> residual. Attention goes through
    `keras.ops.dot_product_attention`, which uses the backend's fused kernel where it has one.

    Args:
        heads: number of heads; must divide the embedding width `D`. Default 4.
        num_layers, mlp_ratio, **kwargs: as `SpeT`.

    Input shape: `(B, rows, columns, D)` patch tokens. Output shape: the same.

    Examples:
    >>> tokens = keras.random.normal((1, 4, 6, 64))  # a 4 x 6 grid of patches
    >>> tuple(SpaT(heads=4, num_layers=1)(tokens).shape)
    (1, 4, 6, 64)
    """

    def _check_dim(self, dim):
        if dim % self.heads:
            raise ValueError(
                "The embedding width must be divisible by `heads`. "
                f"Received: embedding width={dim}, heads={self.heads}"
            )

    def _attend(self, qkv, b, n):
        heads, head_dim = self.heads, self.dim // self.heads
        qkv = ops.reshape(qkv, (b, n, 3, heads, head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (b, n, heads, head_dim)
        out = attention(q, k, v, float(head_dim) ** -0.5)
        return ops.reshape(out, (b, n, self.dim))
