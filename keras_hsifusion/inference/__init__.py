"""Whole-scene inference: `fuse` a scene of any size in overlapping, blended tiles.

`fuse(lr_hsi, hr_msi, method, ...)` takes numpy (or on-disk, or Dask) channels-last images
and a preset, a zoo model or a classical method; `tiling` plans the tiles and their weights.
`fuse_files(lr_path, msi_path, out_path, method, ...)` (`scene`) does the same from files to a
georeferenced file, with nodata, footprint and wavelength checks (`khf fuse`).
See docs/fuse.md.
"""

from keras_hsifusion.inference import tiling
from keras_hsifusion.inference.fuse import fuse
from keras_hsifusion.inference.methods import resolve_method
from keras_hsifusion.inference.scene import fuse_files
from keras_hsifusion.inference.tiling import TilePlan, axis_weights, plan_axis, plan_tiles

__all__ = [
    "TilePlan",
    "axis_weights",
    "fuse",
    "fuse_files",
    "plan_axis",
    "plan_tiles",
    "resolve_method",
    "tiling",
]
