"""Georeferenced rasters: the cube with its map grid, nodata value and band wavelengths.

`read_raster(path)` returns a `Raster`: the float32 `(H, W, C)` array and what a GIS needs to
put it on a map (CRS, affine transform, nodata value, band names, wavelengths in nm).
`open_writer(path, ...)` returns a `RasterWriter` that takes the output block by block
(`writer[r0:r1, c0:c1, :] = block`), so a scene larger than memory can be written tile by
tile; it writes to a temporary file next to `path` and renames it on `close()`, so an
interrupted run never leaves a half-written file under the final name.

| extension | georeferencing | wavelengths | needs |
|---|---|---|---|
| `.tif`, `.tiff` | CRS, transform, nodata, band descriptions | band tags | `rasterio` |
| `.hdr`, `.img` | `map info`, `coordinate system string`, `data ignore value` | ENVI | `spectral` |
| `.h5`, `.hdf5` | attributes `crs`, `transform`, `nodata`, `band_names` | `wavelengths` dataset | |
| `.mat` (v5, v7.3) | entries `crs`, `transform`, `nodata` | `wavelengths` entry | |
| `.npz` | entries `crs`, `transform`, `nodata` | `wavelengths` entry | |
| `.npy` | none | none | |

The transform is the 6-tuple `(a, b, c, d, e, f)` of GDAL/rasterio's affine order: the map
coordinates of the top-left corner of pixel `(row, col)` are `x = a col + b row + c`,
`y = d col + e row + f`. The CRS is a string (`"EPSG:32616"` or WKT).

GeoTIFF wavelengths are written as band tags `wavelength` / `wavelength_units` (the names
GDAL's ENVI driver uses) and `CENTRAL_WAVELENGTH_UM` in the `IMAGERY` domain (GDAL >= 3.10);
they are read back from either, or from band descriptions such as `"550.0 nm"`. Wavelengths
given in micrometres (units `um`/`micrometers`, or no units and every value below 30) are
converted to nm.

A pixel is nodata (`Raster.valid_mask()` is False) when any of its bands equals the nodata
value or is NaN.

One cohesive module (the readers, the block writer, the footprint check and the quicklooks
share the format table and metadata conventions above), hence over 450 lines.
"""

import contextlib
import dataclasses
import math
import os
import re
import tempfile

import h5py
import numpy as np

from keras_hsifusion.data import io as _io

__all__ = [
    "Raster",
    "RasterWriter",
    "check_footprints",
    "false_colour",
    "false_colour_bands",
    "open_writer",
    "read_raster",
    "same_crs",
    "write_png",
    "write_raster",
]

_GEO_EXTRA = "pip install keras-hsifusion[geo]"
_EXTENSIONS = (".tif", ".tiff", ".hdr", ".img", ".h5", ".hdf5", ".he5", ".mat", ".npz", ".npy")


def _rasterio():
    try:
        import rasterio
    except ImportError as e:
        raise ImportError(
            f"GeoTIFF files need the optional package `rasterio`: {_GEO_EXTRA}"
        ) from e
    return rasterio


def _spectral():
    try:
        import spectral
    except ImportError as e:
        raise ImportError(f"ENVI files need the optional package `spectral`: {_GEO_EXTRA}") from e
    return spectral


def _umask_mode(path):
    """Gives `path` the permissions of a newly created file (temporary files are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _ext(path):
    return os.path.splitext(os.fspath(path))[1].lower()


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
            self.transform = _check_transform(self.transform)
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


def _check_transform(transform):
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


def _normalise_crs(crs):
    """`"EPSG:<code>"` when rasterio can identify the CRS, else the string as given."""
    if not crs:
        return None
    try:
        from rasterio.crs import CRS

        return CRS.from_user_input(crs).to_string()
    except Exception:  # no rasterio, or a string it cannot parse
        return crs


def same_crs(a, b):
    """True when the CRS strings `a` and `b` name the same system (rasterio compares WKT)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    try:
        from rasterio.crs import CRS

        return CRS.from_user_input(a) == CRS.from_user_input(b)
    except Exception:  # no rasterio, or a string it cannot parse: compare the text
        return " ".join(str(a).split()) == " ".join(str(b).split())


# --------------------------------------------------------------------------- wavelengths


def _to_nm(values, units=None):
    wl = np.asarray(values, np.float64).reshape(-1)
    units = (units or "").strip().lower()
    if units in ("um", "µm", "micrometer", "micrometers", "micron", "microns"):
        return wl * 1000.0
    if units in ("", "unknown") and wl.size and np.nanmax(wl) < 30.0:
        return wl * 1000.0
    return wl


_NM_IN_TEXT = re.compile(r"(\d+(?:\.\d*)?)\s*nm\b", re.IGNORECASE)


def _wavelengths_from_names(names):
    if not names:
        return None
    found = [_NM_IN_TEXT.search(n or "") for n in names]
    if all(found):
        return np.array([float(m.group(1)) for m in found])
    return None


def _default_names(wavelengths, n):
    if wavelengths is None:
        return None
    return [f"{w:.2f} nm" for w in np.asarray(wavelengths).reshape(-1)[:n]]


# --------------------------------------------------------------------------- readers


def _read_tiff(path, bands):
    rasterio = _rasterio()
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            count = src.count
            indexes = list(range(1, count + 1)) if bands is None else [int(b) + 1 for b in bands]
            data = np.moveaxis(src.read(indexes), 0, -1)
            crs = src.crs.to_string() if src.crs else None
            transform = tuple(src.transform)[:6]
            if crs is None and src.transform.is_identity:
                transform = None
            names = [src.descriptions[i - 1] for i in indexes]
            names = None if not any(names) else [n or "" for n in names]
            wl = []
            for i in indexes:
                tags = src.tags(i)
                if "wavelength" in tags:
                    wl.append(_to_nm(float(tags["wavelength"]), tags.get("wavelength_units"))[0])
                    continue
                imagery = src.tags(i, ns="IMAGERY")
                if "CENTRAL_WAVELENGTH_UM" in imagery:
                    wl.append(float(imagery["CENTRAL_WAVELENGTH_UM"]) * 1000.0)
            wl = np.array(wl) if len(wl) == len(indexes) else _wavelengths_from_names(names)
            nodata = src.nodata
    return Raster(
        data.astype(np.float32, copy=False),
        crs=crs,
        transform=transform,
        nodata=nodata,
        wavelengths=wl,
        band_names=names,
        path=path,
    )


_UTM = {"north": 32600, "south": 32700}


def _envi_georef(meta):
    """`(crs, transform)` from ENVI `map info` / `coordinate system string` (or Nones)."""
    info = meta.get("map info")
    crs = meta.get("coordinate system string")
    if isinstance(crs, list):
        crs = ",".join(crs)
    crs = crs.strip().strip("{}").strip() if crs else None
    if not info:
        return crs, None
    if isinstance(info, str):
        info = info.strip("{}").split(",")
    info = [s.strip() for s in info]
    try:
        ref_x, ref_y, east, north, px, py = (float(v) for v in info[1:7])
    except (ValueError, IndexError):
        return crs, None
    rotation = 0.0
    for item in info[7:]:
        if item.lower().startswith("rotation="):
            rotation = float(item.split("=", 1)[1])
    theta = math.radians(rotation)
    a, b = px * math.cos(theta), py * math.sin(theta)
    d, e = px * math.sin(theta), -py * math.cos(theta)
    # ENVI's reference pixel is 1-based and names the pixel's top-left corner
    c = east - (ref_x - 1) * a - (ref_y - 1) * b
    f = north - (ref_x - 1) * d - (ref_y - 1) * e
    if crs is None and info[0].upper() == "UTM" and len(info) >= 10:
        datum = info[9].upper().replace(" ", "")
        if datum in ("WGS-84", "WGS84"):
            crs = f"EPSG:{_UTM.get(info[8].lower(), 32600) + int(float(info[7]))}"
    return crs, (a, b, c, d, e, f)


def _read_envi(path, bands):
    spectral = _spectral()
    hdr = path if path.endswith(".hdr") else os.path.splitext(path)[0] + ".hdr"
    if not os.path.exists(hdr):
        raise FileNotFoundError(f"{path}: ENVI header {hdr} not found")
    img = spectral.envi.open(hdr)
    meta = img.metadata
    if bands is None:
        data = np.asarray(img.load())
    else:
        data = np.asarray(img.read_bands([int(b) for b in bands]))
    if data.ndim == 2:
        data = data[..., None]
    crs, transform = _envi_georef(meta)
    wl = None
    if meta.get("wavelength"):
        wl = _to_nm([float(v) for v in meta["wavelength"]], meta.get("wavelength units"))
    names = meta.get("band names")
    nodata = meta.get("data ignore value")
    pick = (lambda v: v) if bands is None else (lambda v: [v[int(b)] for b in bands])
    return Raster(
        data.astype(np.float32, copy=False),
        crs=_normalise_crs(crs),
        transform=transform,
        nodata=None if nodata is None else float(nodata),
        wavelengths=None if wl is None else pick(list(wl)),
        band_names=None if not names else pick(list(names)),
        path=path,
    )


def _decode(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU" or value.dtype == object:
            return _decode(value.reshape(-1)[0]) if value.size == 1 else [_decode(v) for v in value]
        if value.dtype.kind == "u" and value.dtype.itemsize == 2:  # MATLAB v7.3 char array
            return "".join(map(chr, value.reshape(-1)))
        return value
    return value


def _georef_from(entries):
    """crs, transform, nodata, band_names from a dict of named values (HDF5/.mat/.npz)."""
    crs = entries.get("crs")
    crs = _decode(crs) if crs is not None else None
    if isinstance(crs, list):
        crs = "".join(crs)
    transform = entries.get("transform")
    if transform is not None:
        transform = np.asarray(transform, np.float64).reshape(-1)
        transform = tuple(transform) if transform.size == 6 else None
    nodata = entries.get("nodata")
    if nodata is not None:
        nodata = np.asarray(nodata, np.float64).reshape(-1)
        nodata = float(nodata[0]) if nodata.size == 1 else None
    names = entries.get("band_names")
    if names is not None:
        names = _decode(np.asarray(names))
        names = [names] if isinstance(names, str) else list(names)
    return (crs or None), transform, nodata, names


def _read_h5_meta(path, key):
    with h5py.File(path, "r") as f:
        entries = {}
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        if key is None:
            cubes = [n for n in names if f[n].ndim >= 2 and not n.startswith("#")]
            cubes3 = [n for n in cubes if f[n].ndim == 3]
            key = (cubes3 or cubes or [None])[0]
        if key is not None:
            entries.update({k: v for k, v in f[key].attrs.items()})
        for name in ("crs", "transform", "nodata", "band_names"):
            if name in f and isinstance(f[name], h5py.Dataset):
                entries.setdefault(name, f[name][()])
    return _georef_from(entries)


def _read_bands_only(path, key, bands):
    """`(cube, wavelengths)` of some bands of an HDF5 (H, W, C) or `.npy` file, read alone."""
    idx = [int(b) for b in bands]
    order = sorted(set(idx))
    if _ext(path) == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.ndim != 3:
            return None
        return np.asarray(arr[..., idx], np.float32), None
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        cubes = [n for n in names if f[n].ndim == 3]
        name = key if key is not None else (cubes[0] if len(cubes) == 1 else None)
        if name is None or name not in f or f[name].ndim != 3:
            return None
        count = f[name].shape[-1]
        part = f[name][:, :, order]
        entries = {k: v for k, v in f[name].attrs.items()}
        entries.update({n: f[n][()] for n in names if f[n].ndim == 1 and f[n].size == count})
    part = part[..., [order.index(i) for i in idx]].astype(np.float32)
    wl = _io._wavelengths(entries, count)
    return part, None if wl is None else wl[idx]


def _read_other(path, key, layout, bands):
    ext = _ext(path)
    partial = None
    if bands is not None and layout == "hwc" and ext in (".h5", ".hdf5", ".he5", ".npy"):
        partial = _read_bands_only(path, key, bands)  # large outputs: read 3 bands, not all
    if partial is not None:  # only the requested bands were read
        cube, wl = partial
        crs = transform = nodata = names = None
        if ext != ".npy":
            crs, transform, nodata, names = _read_h5_meta(path, key)
            names = None if names is None else [names[int(b)] for b in bands]
    else:
        cube, wl = _io.read_cube(path, key=key, layout=layout)
        crs = transform = nodata = names = None
        if ext in (".h5", ".hdf5", ".he5") or (ext == ".mat" and h5py.is_hdf5(path)):
            crs, transform, nodata, names = _read_h5_meta(path, key)
        elif ext == ".mat":
            import scipy.io

            entries = scipy.io.loadmat(path, variable_names=["crs", "transform", "nodata"])
            crs, transform, nodata, names = _georef_from(entries)
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as data:
                entries = {k: data[k] for k in ("crs", "transform", "nodata") if k in data.files}
            crs, transform, nodata, names = _georef_from(entries)
        if names is not None and len(names) != cube.shape[-1]:
            names = None
        if bands is not None:
            idx = [int(b) for b in bands]
            cube = cube[..., idx]
            wl = None if wl is None else wl[idx]
            names = None if names is None else [names[i] for i in idx]
    return Raster(
        cube,
        crs=crs,
        transform=transform,
        nodata=nodata,
        wavelengths=wl,
        band_names=names,
        path=path,
    )


def read_raster(path, key=None, layout="hwc", bands=None):
    """Reads a cube with its georeferencing, nodata value, band names and wavelengths.

    Args:
        path: `.tif`/`.tiff` (rasterio), `.hdr`/`.img` (ENVI, spectral), `.h5`/`.hdf5`,
            `.mat` (v5 or v7.3), `.npz` or `.npy`.
        key: array name inside `.mat`, `.npz` and HDF5 files (default: the only 3-D one).
        layout: `"hwc"` or `"chw"` for `.mat`/`.npy`/`.npz`/HDF5 (see `read_cube`).
        bands: optional list of 0-based band indices to read (GeoTIFF and ENVI read only
            those bands from disk).

    Returns:
        A `Raster` (float32 `(H, W, C)` array + crs, transform, nodata, wavelengths,
        band_names, path).

    Examples:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "scene.h5")
    >>> write_raster(path, np.ones((4, 6, 2)), crs="EPSG:32616",
    ...              transform=(30, 0, 500000, 0, -30, 4400000), wavelengths=[550, 850])
    >>> r = read_raster(path)
    >>> r.shape, r.crs, r.transform[:3], r.wavelengths.tolist()
    ((4, 6, 2), 'EPSG:32616', (30.0, 0.0, 500000.0), [550.0, 850.0])
    """
    path = os.fspath(path)
    ext = _ext(path)
    if ext not in _EXTENSIONS:
        raise ValueError(
            f"Unsupported file extension {ext!r} for {path}. Supported: {sorted(_EXTENSIONS)}"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    try:
        if ext in (".tif", ".tiff"):
            return _read_tiff(path, bands)
        if ext in (".hdr", ".img"):
            return _read_envi(path, bands)
        return _read_other(path, key, layout, bands)
    except (ImportError, FileNotFoundError, KeyError):
        raise
    except ValueError as e:
        if path in str(e):
            raise
        raise ValueError(f"Could not read {path}: {e}") from e
    except Exception as e:  # corrupt files raise many different errors
        raise ValueError(f"Could not read {path}: {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------- footprints


def _scale_from_sizes(hsi, msi):
    (h, w), (H, W) = hsi.shape[:2], msi.shape[:2]
    if H % h or W % w or H // h != W // w:
        raise ValueError(
            f"The HR-MSI is not an integer multiple of the LR-HSI: {msi.describe()} vs "
            f"{hsi.describe()}."
        )
    return H // h


def check_footprints(lr_hsi, hr_msi, scale=None):
    """Checks that two rasters cover the same ground and returns the resolution ratio.

    With a transform on both: the CRSs must agree (when both are known), the ratio of pixel
    sizes must be the same integer on both axes, `lr_hsi.transform` must equal
    `hr_msi.transform` with its pixel size multiplied by that ratio (origins within 1% of an
    HR pixel), and the HR size must be the ratio times the LR size. Without a transform on
    one of them, only the sizes are checked.

    Args:
        lr_hsi: `Raster` of the low-resolution HSI.
        hr_msi: `Raster` of the high-resolution MSI.
        scale: optional expected ratio; a different inferred ratio is an error.

    Returns:
        The integer scale.

    Raises:
        ValueError: naming both files, their grids and what differs.
    """
    both = f"LR-HSI {lr_hsi.describe()} and HR-MSI {hr_msi.describe()}"
    if lr_hsi.transform is None or hr_msi.transform is None:
        inferred = _scale_from_sizes(lr_hsi, hr_msi)
    else:
        if lr_hsi.crs and hr_msi.crs and not same_crs(lr_hsi.crs, hr_msi.crs):
            raise ValueError(f"Footprints disagree: different CRS for {both}.")
        (lx, ly), (mx, my) = lr_hsi.pixel_size, hr_msi.pixel_size
        sx, sy = lx / mx, ly / my
        inferred = round(sx)
        if abs(sx - inferred) > 1e-6 * sx or abs(sy - inferred) > 1e-6 * sy or inferred < 1:
            raise ValueError(
                f"Footprints disagree: pixel sizes are not an integer ratio (x {sx:g}, "
                f"y {sy:g}) for {both}."
            )
        a, b, c, d, e, f = hr_msi.transform
        s = inferred
        expected = (a * s, b * s, c, d * s, e * s, f)
        tol_lin = 1e-6 * max(lx, ly)
        tol_origin = 0.01 * min(mx, my)
        lin_ok = all(abs(x - y) <= tol_lin for x, y in zip(expected[::3], lr_hsi.transform[::3]))
        lin_ok &= all(abs(x - y) <= tol_lin for x, y in zip(expected[1::3], lr_hsi.transform[1::3]))
        dx = lr_hsi.transform[2] - c
        dy = lr_hsi.transform[5] - f
        if not lin_ok:
            raise ValueError(
                f"Footprints disagree: the LR-HSI grid is not the HR-MSI grid x {s} (rotation "
                f"or axis direction differs) for {both}."
            )
        if abs(dx) > tol_origin or abs(dy) > tol_origin:
            raise ValueError(
                f"Footprints disagree: origins differ by ({dx:g}, {dy:g}) map units for {both}."
            )
        (h, w), (H, W) = lr_hsi.shape[:2], hr_msi.shape[:2]
        if (H, W) != (s * h, s * w):
            raise ValueError(
                f"Footprints disagree: with scale {s} the HR-MSI should be {s * h}x{s * w} px "
                f"for {both}."
            )
    if scale is not None and int(scale) != inferred:
        raise ValueError(f"`scale`={scale} but the files give scale {inferred}: {both}.")
    return inferred


# --------------------------------------------------------------------------- writers


def _split_key(key, shape):
    """`(rows, cols, bands)` slices of a `writer[...]` key (only basic slicing)."""
    if not isinstance(key, tuple):
        key = (key,)
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1 :]
    key = key + (slice(None),) * (3 - len(key))
    if len(key) != 3 or not all(isinstance(k, slice) for k in key):
        raise TypeError(f"A RasterWriter takes writer[r0:r1, c0:c1, :] = block. Received: {key}")
    out = []
    for k, n in zip(key, shape):
        start, stop, step = k.indices(n)
        if step != 1:
            raise TypeError(f"A RasterWriter takes contiguous slices. Received: {key}")
        out.append((start, max(start, stop)))
    return out


class RasterWriter:
    """Writes an `(H, W, C)` float32 raster block by block, atomically.

    Create it with `open_writer`. `writer[r0:r1, c0:c1, :] = block` writes a block;
    `close()` (or leaving a `with` block) finishes the file and renames it to `path`;
    `abort()` (or an exception inside the `with` block) deletes the temporary file.
    GeoTIFF, ENVI, HDF5, MATLAB v7.3 and `.npy` are written to disk as the blocks come;
    `.mat` v5 and `.npz` are assembled in memory and saved on `close()`.

    Attributes:
        path: final path.
        shape: `(H, W, C)`.
        dtype: `float32`.
    """

    def __init__(self, path, shape, meta, mat_version="5", key="cube"):
        self.path = os.fspath(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3
        self.meta = meta
        self.key = key
        self._ext = _ext(self.path)
        if self._ext == ".img":
            raise ValueError(f"Write ENVI files through their header (.hdr). Received: {path}")
        if self._ext not in _EXTENSIONS:
            raise ValueError(
                f"Unsupported output extension {self._ext!r} for {path}. "
                f"Supported: {sorted(set(_EXTENSIONS) - {'.img'})}"
            )
        self._mat73 = self._ext == ".mat" and str(mat_version) in ("7.3", "73")
        if self._ext == ".mat" and not self._mat73 and str(mat_version) != "5":
            raise ValueError(f"`mat_version` must be '5' or '7.3'. Received: {mat_version!r}")
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"The output folder {folder} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=".tmp-", suffix=self._ext, dir=folder)
        os.close(fd)
        self._closed = False
        try:
            self._open()
        except BaseException:
            self._cleanup()
            raise

    # -- per format
    def _open(self):
        H, W, C = self.shape
        m = self.meta
        if self._ext in (".tif", ".tiff"):
            rasterio = _rasterio()
            from rasterio.transform import Affine

            profile = dict(
                driver="GTiff",
                height=H,
                width=W,
                count=C,
                dtype="float32",
                crs=m["crs"],
                nodata=m["nodata"],
                BIGTIFF="IF_SAFER",
                compress="deflate",
                predictor=3,
            )
            if m["transform"] is not None:
                profile["transform"] = Affine(*m["transform"])
            if H >= 16 and W >= 16:
                block = 256 if min(H, W) >= 256 else 16 * (min(H, W) // 16)
                profile.update(tiled=True, blockxsize=block, blockysize=block)
            import warnings

            from rasterio.errors import NotGeoreferencedWarning

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self._tmp, "w+", **profile)
            names = m["band_names"] or _default_names(m["wavelengths"], C)
            for i in range(C):
                if names:
                    self._ds.set_band_description(i + 1, names[i])
                if m["wavelengths"] is not None:
                    wl = float(m["wavelengths"][i])
                    self._ds.update_tags(i + 1, wavelength=f"{wl:.6g}", wavelength_units="nm")
                    self._ds.update_tags(
                        i + 1, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=f"{wl / 1000.0:.8g}"
                    )
        elif self._ext == ".hdr":
            spectral = _spectral()
            os.remove(self._tmp)
            meta = _envi_header(m, C)
            img = spectral.envi.create_image(
                self._tmp,
                meta,
                shape=(H, W, C),
                dtype=np.float32,
                interleave="bip",
                force=True,
                ext=".img",
            )
            self._data_tmp = os.path.splitext(self._tmp)[0] + ".img"
            self._arr = img.open_memmap(writable=True)
        elif self._ext in (".h5", ".hdf5", ".he5") or self._mat73:
            kwargs = {"userblock_size": 512} if self._mat73 else {}
            self._h5 = h5py.File(self._tmp, "w", **kwargs)
            chunks = (min(H, 256), min(W, 256), C)
            if self._mat73:  # MATLAB is column-major: an (H, W, C) variable is (C, W, H)
                chunks = chunks[::-1]
                self._arr = self._h5.create_dataset(
                    self.key, shape=(C, W, H), dtype="float32", chunks=chunks
                )
                self._arr.attrs["MATLAB_class"] = np.bytes_("single")
            else:
                self._arr = self._h5.create_dataset(
                    self.key, shape=(H, W, C), dtype="float32", chunks=chunks
                )
            self._write_h5_meta()
        elif self._ext == ".npy":
            self._arr = np.lib.format.open_memmap(
                self._tmp, mode="w+", dtype=np.float32, shape=(H, W, C)
            )
        else:  # .mat v5, .npz: in memory
            self._arr = np.zeros((H, W, C), np.float32)

    def _write_h5_meta(self):
        m, f = self.meta, self._h5
        if self._mat73:

            def put(name, value, cls):
                ds = f.create_dataset(name, data=value)
                ds.attrs["MATLAB_class"] = np.bytes_(cls)
                if cls == "char":
                    ds.attrs["MATLAB_int_decode"] = np.int32(2)

            if m["wavelengths"] is not None:
                put("wavelengths", np.asarray(m["wavelengths"], np.float64)[:, None], "double")
            if m["transform"] is not None:
                put("transform", np.asarray(m["transform"], np.float64)[:, None], "double")
            if m["nodata"] is not None:
                put("nodata", np.array([[m["nodata"]]], np.float64), "double")
            if m["crs"]:
                put(
                    "crs",
                    np.frombuffer(m["crs"].encode(), np.uint8).astype(np.uint16)[:, None],
                    "char",
                )
            return
        if m["wavelengths"] is not None:
            f.create_dataset("wavelengths", data=np.asarray(m["wavelengths"], np.float64))
        attrs = self._arr.attrs
        if m["crs"]:
            attrs["crs"] = m["crs"]
        if m["transform"] is not None:
            attrs["transform"] = np.asarray(m["transform"], np.float64)
        if m["nodata"] is not None:
            attrs["nodata"] = float(m["nodata"])
        if m["band_names"]:
            attrs["band_names"] = np.array(m["band_names"], dtype=h5py.string_dtype())

    def __setitem__(self, key, block):
        if self._closed:
            raise ValueError(f"The writer of {self.path} is closed")
        (r0, r1), (c0, c1), (b0, b1) = _split_key(key, self.shape)
        block = np.asarray(block, np.float32)
        want = (r1 - r0, c1 - c0, b1 - b0)
        block = np.broadcast_to(block, want)
        if self._ext in (".tif", ".tiff"):
            from rasterio.windows import Window

            self._ds.write(
                np.moveaxis(block, -1, 0),
                indexes=list(range(b0 + 1, b1 + 1)),
                window=Window(c0, r0, c1 - c0, r1 - r0),
            )
        elif self._mat73:
            self._arr[b0:b1, c0:c1, r0:r1] = np.transpose(block)
        else:
            self._arr[r0:r1, c0:c1, b0:b1] = block

    def __getitem__(self, key):
        (r0, r1), (c0, c1), (b0, b1) = _split_key(key, self.shape)
        if self._ext in (".tif", ".tiff"):
            from rasterio.windows import Window

            data = self._ds.read(
                list(range(b0 + 1, b1 + 1)), window=Window(c0, r0, c1 - c0, r1 - r0)
            )
            return np.moveaxis(data, 0, -1)
        if self._mat73:
            return np.transpose(self._arr[b0:b1, c0:c1, r0:r1])
        return np.asarray(self._arr[r0:r1, c0:c1, b0:b1])

    def close(self):
        """Finishes the file and renames it to `path` (idempotent)."""
        if self._closed:
            return
        try:
            self._finish()
            if self._ext == ".hdr":
                _umask_mode(self._data_tmp)
                os.replace(self._data_tmp, os.path.splitext(self.path)[0] + ".img")
            _umask_mode(self._tmp)
            os.replace(self._tmp, self.path)
        finally:
            self._closed = True
            self._cleanup()

    def _finish(self):
        m = self.meta
        if self._ext in (".tif", ".tiff"):
            self._ds.close()
        elif self._ext == ".hdr":
            self._arr.flush()
            del self._arr
        elif hasattr(self, "_h5"):
            self._h5.close()
            if self._mat73:
                _io.mark_matlab73(self._tmp)
        elif self._ext == ".npy":
            self._arr.flush()
            del self._arr
        else:
            extra = {}
            if m["wavelengths"] is not None:
                extra["wavelengths"] = np.asarray(m["wavelengths"], np.float64)
            if m["transform"] is not None:
                extra["transform"] = np.asarray(m["transform"], np.float64)
            if m["nodata"] is not None:
                extra["nodata"] = np.float64(m["nodata"])
            if m["crs"]:
                extra["crs"] = np.str_(m["crs"])
            if self._ext == ".npz":
                with open(self._tmp, "wb") as fh:
                    np.savez(fh, **{self.key: self._arr}, **extra)
            else:
                import scipy.io

                scipy.io.savemat(self._tmp, {self.key: self._arr, **extra})

    def abort(self):
        """Drops the output: closes and deletes the temporary file; `path` is untouched."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if hasattr(self, "_ds"):
                self._ds.close()
            if hasattr(self, "_h5"):
                self._h5.close()
        self._cleanup()

    def _cleanup(self):
        for attr in ("_arr", "_ds"):
            if hasattr(self, attr):
                delattr(self, attr)
        for tmp in (self._tmp, getattr(self, "_data_tmp", None)):
            if tmp and os.path.exists(tmp):
                os.remove(tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        with contextlib.suppress(Exception):
            self.abort()


def _envi_header(m, bands):
    meta = {"band names": m["band_names"] or _default_names(m["wavelengths"], bands)}
    if meta["band names"] is None:
        del meta["band names"]
    if m["wavelengths"] is not None:
        meta["wavelength"] = [f"{float(w):.6g}" for w in m["wavelengths"]]
        meta["wavelength units"] = "Nanometers"
    if m["nodata"] is not None:
        meta["data ignore value"] = f"{m['nodata']:g}"
    t = m["transform"]
    if t is not None:
        a, b, c, d, e, f = t
        if abs(b) > 1e-12 or abs(d) > 1e-12:
            px, py = math.hypot(a, d), math.hypot(b, e)
            rotation = f", rotation={math.degrees(math.atan2(d, a)):.10g}"
        else:
            px, py, rotation = a, -e, ""
        name, extra = "Arbitrary", ""
        crs = m["crs"]
        if crs and re.fullmatch(r"EPSG:32[67]\d\d", crs):
            code = int(crs.split(":")[1])
            hemi = "North" if code < 32700 else "South"
            name, extra = "UTM", f", {code % 100}, {hemi}, WGS-84"
        meta["map info"] = (
            f"{{{name}, 1, 1, {c:.10g}, {f:.10g}, {px:.10g}, {py:.10g}{extra}{rotation}}}"
        )
        if crs:
            wkt = crs
            try:
                from rasterio.crs import CRS

                wkt = CRS.from_user_input(crs).to_wkt()
            except Exception:  # no rasterio: keep the string as given
                pass
            meta["coordinate system string"] = f"{{{wkt}}}"
    return meta


def open_writer(
    path,
    shape,
    crs=None,
    transform=None,
    nodata=None,
    wavelengths=None,
    band_names=None,
    like=None,
    mat_version="5",
    key="cube",
):
    """Opens a `RasterWriter` for an `(H, W, C)` float32 output.

    Args:
        path: output file; the format follows the extension (see the module docstring).
        shape: `(H, W, C)`.
        crs, transform, nodata: the map grid of the output (default: those of `like`).
        wavelengths: `(C,)` band centres in nm (stored where the format can).
        band_names: C names (GeoTIFF band descriptions, ENVI `band names`, HDF5 attribute).
        like: optional `Raster` whose grid (crs, transform, nodata) the output takes.
        mat_version: `"5"` (default, in memory) or `"7.3"` (HDF5, written block by block).
        key: variable name in `.mat`, `.npz` and HDF5 files. Defaults to `"cube"`.

    Returns:
        A `RasterWriter`; use it as a context manager or call `close()`.

    Examples:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.npy")
    >>> with open_writer(path, (4, 4, 2)) as w:
    ...     w[0:2, :, :] = 1.0
    ...     w[2:4, :, :] = np.full((2, 4, 2), 2.0)
    >>> np.load(path)[:, 0, 0].tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"`shape` must be (H, W, C) of positive sizes. Received: {shape}")
    if like is not None:
        crs = like.crs if crs is None else crs
        transform = like.transform if transform is None else transform
        nodata = like.nodata if nodata is None else nodata
    if wavelengths is not None:
        wavelengths = np.asarray(wavelengths, np.float64).reshape(-1)
        if wavelengths.size != shape[-1]:
            raise ValueError(
                f"`wavelengths` needs {shape[-1]} entries. Received {wavelengths.size}"
            )
    if band_names is not None and len(band_names) != shape[-1]:
        raise ValueError(f"`band_names` needs {shape[-1]} entries. Received {len(band_names)}")
    meta = {
        "crs": crs,
        "transform": None if transform is None else _check_transform(transform),
        "nodata": None if nodata is None else float(nodata),
        "wavelengths": wavelengths,
        "band_names": None if band_names is None else [str(n) for n in band_names],
    }
    return RasterWriter(path, shape, meta, mat_version=mat_version, key=key)


def write_raster(path, raster, mat_version="5", key="cube", **meta):
    """Writes a `Raster` (or an array plus `crs`/`transform`/... keywords) atomically.

    Args:
        path: output file (format from the extension).
        raster: a `Raster`, or an `(H, W, C)` array.
        mat_version: `"5"` or `"7.3"` for `.mat` outputs.
        key: variable name in `.mat`, `.npz` and HDF5 files.
        **meta: `crs`, `transform`, `nodata`, `wavelengths`, `band_names` (override those
            of `raster`).
    """
    if isinstance(raster, Raster):
        fields = {
            k: getattr(raster, k)
            for k in ("crs", "transform", "nodata", "wavelengths", "band_names")
        }
        fields.update(meta)
        array = raster.array
    else:
        array, fields = np.asarray(raster), meta
        if array.ndim == 2:
            array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"`raster` must be (H, W, C). Received shape {array.shape}")
    with open_writer(path, array.shape, mat_version=mat_version, key=key, **fields) as w:
        w[:, :, :] = array


# --------------------------------------------------------------------------- quicklooks


def false_colour_bands(wavelengths, bands):
    """Three band indices for a false-colour view, and the name of the combination.

    Colour-infrared (860, 650, 550 nm as R, G, B; vegetation shows red) when the
    wavelengths reach 800 nm, true colour (650, 550, 460 nm) when they cover the visible
    only, and bands at 3/4, 1/2 and 1/4 of the cube without wavelengths.

    Args:
        wavelengths: `(C,)` band centres in nm, or None.
        bands: number of bands C.

    Returns:
        `(indices, description)`.
    """
    if bands < 3:
        return [0] * 3 if bands == 1 else [1, 0, 0], "grey"
    if wavelengths is None:
        return [(3 * bands) // 4, bands // 2, bands // 4], "bands at 3/4, 1/2, 1/4"
    wl = np.asarray(wavelengths, np.float64)
    targets, name = ((860.0, 650.0, 550.0), "CIR 860/650/550 nm")
    if wl.max() < 800.0:
        targets, name = ((650.0, 550.0, 460.0), "RGB 650/550/460 nm")
    return [int(np.argmin(np.abs(wl - t))) for t in targets], name


def false_colour(rgb_bands, valid=None, reference=None):
    """Stretches three bands to uint8 RGB between the 1st and 99th percentiles.

    Args:
        rgb_bands: `(H, W, 3)` array (the three bands of `false_colour_bands`).
        valid: optional `(H, W)` bool; invalid pixels are black and ignored by the stretch.
        reference: optional `(H', W', 3)` array whose percentiles set the stretch.

    Returns:
        uint8 `(H, W, 3)`.
    """
    x = np.asarray(rgb_bands, np.float64)
    ref = x if reference is None else np.asarray(reference, np.float64)
    pixels = ref.reshape(-1, 3)
    if valid is not None and reference is None:
        pixels = pixels[np.asarray(valid).reshape(-1)]
    pixels = pixels[np.isfinite(pixels).all(axis=1)]
    if pixels.size == 0:
        return np.zeros(x.shape[:2] + (3,), np.uint8)
    lo, hi = np.percentile(pixels, 1, axis=0), np.percentile(pixels, 99, axis=0)
    out = np.clip((x - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
    out = np.nan_to_num(out, nan=0.0)
    if valid is not None:
        out[~np.asarray(valid)] = 0.0
    return np.round(out * 255.0).astype(np.uint8)


def write_png(path, rgb):
    """Writes an 8-bit `(H, W, 3)` (or `(H, W)`) image as PNG with zlib only, atomically."""
    import struct
    import zlib

    from keras_hsifusion.utils.files import atomic_path

    img = np.asarray(rgb)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ValueError(f"`rgb` must be uint8 (H, W, 3). Received {img.dtype} {img.shape}")
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
    with atomic_path(path, ".png") as tmp:
        with open(tmp, "wb") as f:
            f.write(png)
        _umask_mode(tmp)
