"""The data I/O stack: one format table, one reader per format, one writer, footprint checks.

| module | job |
|---|---|
| `formats` | the format table (extension -> format, optional package) and shared conventions |
| `model` | `Raster`: the float32 `(H, W, C)` array with its map grid, nodata and wavelengths |
| `readers` | `read_raster` (a `Raster`), `read_cube` (`(array, wavelengths)`), HSSDCT samples |
| `writer` | `open_writer` / `RasterWriter` (block by block, atomic), `write_raster`, `write_cube` |
| `footprints` | CRS comparison, ENVI map info, `check_footprints` |
| `quicklook` | false colour and PNG |

Window-by-window access to scene files for training is `keras_hsifusion.data.scene_files`,
which reads through the same conventions.
"""

from keras_hsifusion.data.raster.footprints import check_footprints, same_crs
from keras_hsifusion.data.raster.formats import EXTENSIONS, FORMATS
from keras_hsifusion.data.raster.model import Raster
from keras_hsifusion.data.raster.quicklook import false_colour, false_colour_bands, write_png
from keras_hsifusion.data.raster.readers import read_cube, read_hssdct_sample, read_raster
from keras_hsifusion.data.raster.writer import (
    RasterWriter,
    open_writer,
    write_cube,
    write_hssdct_sample,
    write_mat73,
    write_raster,
)

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "Raster",
    "RasterWriter",
    "check_footprints",
    "false_colour",
    "false_colour_bands",
    "open_writer",
    "read_cube",
    "read_hssdct_sample",
    "read_raster",
    "same_crs",
    "write_cube",
    "write_hssdct_sample",
    "write_mat73",
    "write_png",
    "write_raster",
]
