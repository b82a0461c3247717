"""A layer wrapper around the torch-exact `keras_hsifusion.ops.interpolate`."""

from keras import layers

from keras_hsifusion import ops as hops
from keras_hsifusion.layers._utils import register


@register
class Interpolate(layers.Layer):
    """Resizes `(B, H, W, C)` by `scale_factor` exactly like torch's `F.interpolate`.

    Args:
        scale_factor: positive float; the output has `floor(H * scale_factor)` rows.
        mode: `"nearest"`, `"nearest-exact"`, `"bilinear"` or `"bicubic"` (torch's a=-0.75).

    Examples:
    >>> tuple(Interpolate(0.25, "bicubic")(keras.random.normal((1, 16, 16, 3))).shape)
    (1, 4, 4, 3)
    """

    def __init__(self, scale_factor, mode="bilinear", **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(scale_factor, (int, float)) and scale_factor > 0):
            raise ValueError(
                f"`scale_factor` must be a positive number. Received: scale_factor={scale_factor!r}"
            )
        if mode not in ("nearest", "nearest-exact", "bilinear", "bicubic"):
            raise ValueError(f"Unknown interpolation `mode`. Received: mode={mode!r}")
        self.scale_factor = float(scale_factor)
        self.mode = mode

    def call(self, x):
        return hops.interpolate(x, scale_factor=self.scale_factor, mode=self.mode)

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else int(n * self.scale_factor)

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(scale_factor=self.scale_factor, mode=self.mode)
        return config
