"""Backend-agnostic tensor helpers, each identical to the PyTorch op it stands for."""

from keras_hsifusion.ops.padding import pad_amount, reflect_pad, zero_pad
from keras_hsifusion.ops.pixel_shuffle import pixel_shuffle, pixel_unshuffle
from keras_hsifusion.ops.resize import interpolate, upsample_nearest
from keras_hsifusion.ops.windows import pad_to_windows, window_partition, window_reverse

__all__ = [
    "interpolate",
    "pad_amount",
    "pad_to_windows",
    "pixel_shuffle",
    "pixel_unshuffle",
    "reflect_pad",
    "upsample_nearest",
    "window_partition",
    "window_reverse",
    "zero_pad",
]
