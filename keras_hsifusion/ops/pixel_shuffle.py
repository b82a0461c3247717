"""PixelShuffle / PixelUnshuffle with torch's channel order, channels-last.

``keras.ops.depth_to_space`` uses the DCR channel order, which is not torch's.
"""

from keras import ops


def pixel_shuffle(x, factor):
    """`(B, H, W, C*r*r)` -> `(B, H*r, W*r, C)`, identical to ``torch.nn.PixelShuffle(r)``."""
    r = int(factor)
    shape = ops.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    if x.shape[-1] % (r * r):
        raise ValueError(
            f"The channel count must be divisible by factor**2={r * r}. "
            f"Received: channels={x.shape[-1]}, factor={factor}"
        )
    c = x.shape[-1] // (r * r)
    x = ops.reshape(x, (b, h, w, c, r, r))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3))
    return ops.reshape(x, (b, h * r, w * r, c))


def pixel_unshuffle(x, factor):
    """`(B, H*r, W*r, C)` -> `(B, H, W, C*r*r)`, identical to ``torch.nn.PixelUnshuffle(r)``."""
    r = int(factor)
    shape = ops.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    c = x.shape[-1]
    x = ops.reshape(x, (b, h // r, r, w // r, r, c))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4))
    return ops.reshape(x, (b, h // r, w // r, c * r * r))
