"""The raster model: a cube with its map grid, nodata value, band names and wavelengths.

The transform is the 6-tuple `(a, b, c, d, e, f)` of GDAL/rasterio's affine order: the map
coordinates of the top-left corner of pixel `(row, col)` are `x = a col + b row + c`,
`y = d col + e row + f`. The CRS is a string (`"EPSG:32616"` or WKT).

A pixel is nodata (`Raster.valid_mask()` is False) when any of its bands equals the nodata
value or is NaN.
"""

import dataclasses
import math

import numpy as np

__all__ = ["Raster", "check_transform"]


@dataclasses.dataclass
class Raster:
    """A cube and its map metadata, as returned by `read_raster`.

    Args:
        array: float32 `(H, W, C)` array.
        crs: coordinate reference system, a string (`"EPSG:32616"` or WKT), or None.
        transform: affine transform `(a, b, c, d, e, f)` (see the module docstring) or None.
        nodata: the nodata value (a float, possibly NaN) or None.
        wavelengths: float64 `(C,)` band centres in nm, or None.
        band_names: list of C band names, or None.
        path: the file it was read from, or None.

    Examples:
    >>> r = Raster(np.zeros((4, 6, 3), "float32"), crs="EPSG:32616",
    ...            transform=(30.0, 0.0, 500000.0, 0.0, -30.0, 4400000.0))
    >>> r.shape, r.pixel_size, r.bounds
    ((4, 6, 3), (30.0, 30.0), (500000.0, 4399880.0, 500180.0, 4400000.0))
    """

    array: np.ndarray
    crs: str = None
    transform: tuple = None
    nodata: float = None
    wavelengths: np.ndarray = None
    band_names: list = None
    path: str = None

    def __post_init__(self):
        self.array = np.asarray(self.array)
        if self.array.ndim == 2:
            self.array = self.array[..., None]
        if self.array.ndim != 3:
            raise ValueError(
                f"`array` must be an (H, W, C) cube. Received shape {self.array.shape}"
            )
        if self.transform is not None:
            self.transform = check_transform(self.transform)
        if self.wavelengths is not None:
            self.wavelengths = np.asarray(self.wavelengths, np.float64).reshape(-1)
            if self.wavelengths.size != self.array.shape[-1]:
                raise ValueError(
                    f"`wavelengths` must have one entry per band ({self.array.shape[-1]}). "
                    f"Received {self.wavelengths.size} wavelengths"
                )
        if self.band_names is not None:
            self.band_names = [str(n) for n in self.band_names]
            if len(self.band_names) != self.array.shape[-1]:
                raise ValueError(
                    f"`band_names` must have one entry per band ({self.array.shape[-1]}). "
                    f"Received {len(self.band_names)} names"
                )
        if self.nodata is not None:
            self.nodata = float(self.nodata)

    @property
    def shape(self):
        return self.array.shape

    @property
    def pixel_size(self):
        """`(x, y)` pixel size in map units (None without a transform)."""
        if self.transform is None:
            return None
        a, b, _, d, e, _ = self.transform
        return (math.hypot(a, d), math.hypot(b, e))

    @property
    def bounds(self):
        """`(left, bottom, right, top)` of a north-up raster (None without a transform)."""
        if self.transform is None:
            return None
        a, b, c, d, e, f = self.transform
        h, w = self.array.shape[:2]
        xs = [c, c + a * w, c + b * h, c + a * w + b * h]
        ys = [f, f + d * w, f + e * h, f + d * w + e * h]
        return (min(xs), min(ys), max(xs), max(ys))

    def valid_mask(self):
        """`(H, W)` bool: True where no band is nodata or NaN."""
        bad = np.isnan(self.array).any(axis=-1)
        if self.nodata is not None and not math.isnan(self.nodata):
            bad |= (self.array == np.float32(self.nodata)).any(axis=-1)
        return ~bad

    def describe(self):
        """One line: file, size, pixel size, origin and CRS (used in error messages)."""
        h, w, c = self.array.shape
        text = f"{self.path or 'array'} ({h}x{w} px, {c} bands"
        if self.transform is not None:
            px, py = self.pixel_size
            origin = f"({self.transform[2]:.10g}, {self.transform[5]:.10g})"
            text += f", pixel {px:.10g}x{py:.10g}, origin {origin}"
        text += f", CRS {self.crs})" if self.crs else ")"
        return text


def check_transform(transform):
    """`transform` as 6 floats, checked: finite and not singular (`ValueError` otherwise)."""
    try:
        values = tuple(float(v) for v in tuple(transform)[:6])
    except (TypeError, ValueError):
        values = ()
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"`transform` must be 6 finite numbers (a, b, c, d, e, f). Received: {transform!r}"
        )
    if values[0] * values[4] - values[1] * values[3] == 0:
        raise ValueError(f"`transform` is singular (zero pixel size). Received: {values}")
    return values
