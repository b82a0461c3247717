"""The format table and the conventions every reader and writer of the package shares.

One row per file format (`FORMATS`); `read_cube` and `read_raster` dispatch on its `name`, the
writer and `scene_files` accept exactly its extensions (`EXTENSIONS`), and the optional
package of a format is imported through `format_module`.

| format | extensions | reads and writes with | map grid stored as | wavelengths |
|---|---|---|---|---|
| GeoTIFF | `.tif`, `.tiff` | rasterio (`[geo]`), tifffile | CRS, transform, nodata | band tags |
| ENVI | `.hdr` / `.img` | spectral (`[geo]`) | `map info`, `data ignore value` | header |
| HDF5 | `.h5`, `.hdf5`, `.he5` | h5py | attributes `crs`, `transform`, `nodata` | dataset |
| MATLAB | `.mat` (v5, v7.3) | scipy, h5py (v7.3) | entries `crs`, `transform`, `nodata` | entry |
| NPZ | `.npz` | numpy | entries `crs`, `transform`, `nodata` | entry |
| NPY | `.npy` | numpy | none | none |

GeoTIFF band descriptions, the ENVI `band names` and the HDF5 attribute `band_names` hold band
names; the ENVI `coordinate system string` holds the CRS. Without rasterio, `read_cube` (pixels
and wavelengths only) reads TIFF through tifffile (`[datasets]`), page stacks included.

Named arrays (`.mat`, `.npz`, HDF5): the cube is `key`, or the only 3-D array (the only 2-D
one if there is no 3-D one), `pick_entry`; wavelengths are the first entry named one of
`WAVELENGTH_KEYS` (any case) with one value per band, `find_wavelengths`. Wavelengths are in nm;
values given in micrometres (units `um`/`micrometers`, or no units and every value below 30)
are converted, `to_nm`.
"""

import collections
import os
import re

import numpy as np

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FileFormat",
    "WAVELENGTH_KEYS",
    "as_cube",
    "default_band_names",
    "extension",
    "file_format",
    "format_module",
    "find_wavelengths",
    "hssdct_sample_files",
    "optional_import",
    "pick_entry",
    "to_nm",
    "wavelengths_from_names",
]

FileFormat = collections.namedtuple(
    "FileFormat", ["name", "extensions", "needs", "extra", "window"]
)
FileFormat.__doc__ = """One row of the format table.

name: the format; extensions: file extensions (lower case); needs: the optional package its
reader and writer import (None: a dependency of the package); extra: the pip extra holding it;
window: what reading one window of a scene touches (`"window"` or `"whole"`).
"""

FORMATS = (
    FileFormat("GeoTIFF", (".tif", ".tiff"), "rasterio", "geo", "window"),
    FileFormat("ENVI", (".hdr", ".img"), "spectral", "geo", "window"),
    FileFormat("HDF5", (".h5", ".hdf5", ".he5"), None, None, "window"),
    FileFormat("MATLAB", (".mat",), None, None, "whole"),  # v7.3 (HDF5): by window
    FileFormat("NPZ", (".npz",), None, None, "whole"),
    FileFormat("NPY", (".npy",), None, None, "window"),
)
_BY_EXTENSION = {ext: fmt for fmt in FORMATS for ext in fmt.extensions}
EXTENSIONS = tuple(_BY_EXTENSION)

WAVELENGTH_KEYS = ("wavelengths", "wavelength", "wavelengths_nm", "wavelength_nm", "wl", "lambda")


def extension(path):
    """The lower-case extension of `path` (`".tif"`)."""
    return os.path.splitext(os.fspath(path))[1].lower()


def file_format(path):
    """The `FileFormat` of `path` by its extension, or None for an unsupported one."""
    return _BY_EXTENSION.get(extension(path))


def optional_import(module, purpose, extra="datasets"):
    """Imports an optional package, or raises `ImportError` saying what needs it and how to
    install it (`"<purpose> needs the optional package `x`: pip install ..."`)."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        raise ImportError(
            f"{purpose} needs the optional package `{module}`: pip install keras-hsifusion[{extra}]"
        ) from e


def as_cube(array, path, key, layout):
    """A float32 `(H, W, C)` copy of a named array (`layout` `"hwc"` or `"chw"`), checked."""
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{path}: entry {key!r} is not a numeric array (dtype {arr.dtype}); it does not "
            "look like an image cube."
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(
            f"{path}: entry {key!r} has shape {arr.shape}; expected an (H, W, C) cube or an "
            "(H, W) image."
        )
    if layout == "chw":
        arr = np.moveaxis(arr, 0, -1)
    elif layout != "hwc":
        raise ValueError(f"`layout` must be 'hwc' or 'chw'. Received: layout={layout!r}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def pick_entry(entries, path, key):
    """Chooses the cube among named arrays (anything with a `shape`): `key`, or the only
    array with 3 dims (with 2 dims if there is no 3-D one)."""
    if key is not None:
        if key not in entries:
            raise KeyError(f"{path}: no entry {key!r}. Available: {sorted(entries)}")
        return key
    candidates = [k for k, v in entries.items() if len(getattr(v, "shape", ())) >= 2]
    cubes = [k for k in candidates if len(entries[k].shape) == 3]
    choice = cubes if cubes else candidates
    if len(choice) != 1:
        raise ValueError(
            f"{path}: cannot tell which entry is the cube; pass `key=`. "
            f"Candidates: {sorted(choice)}"
        )
    return choice[0]


def find_wavelengths(entries, n_bands, key=None):
    """The `(n_bands,)` float64 wavelengths among named values, or None.

    `key` names the entry (missing: `KeyError`; not one value per band: `ValueError`);
    without it, the first entry named one of `WAVELENGTH_KEYS` (any case) with `n_bands`
    values.
    """
    if key:  # asked for by name: it must be there, with one entry per band
        if key not in entries:
            raise KeyError(f"no wavelengths entry {key!r}. Available: {sorted(entries)}")
        wl = np.asarray(entries[key], dtype=np.float64).reshape(-1)
        if wl.size != n_bands:
            raise ValueError(
                f"`wavelengths_key` {key!r} must hold one wavelength per band ({n_bands}). "
                f"Received {wl.size} values"
            )
        return wl
    for name in [k for k in entries if k.lower() in WAVELENGTH_KEYS]:
        wl = np.asarray(entries[name], dtype=np.float64).reshape(-1)
        if wl.size == n_bands:
            return wl
    return None


def to_nm(values, units=None):
    """Wavelengths in nm: micrometres (`units` `um`, `micrometers`, ..., or no units and every
    value below 30) are multiplied by 1000."""
    wl = np.asarray(values, np.float64).reshape(-1)
    units = (units or "").strip().lower()
    if units in ("um", "µm", "micrometer", "micrometers", "micron", "microns"):
        return wl * 1000.0
    if units in ("", "unknown") and wl.size and np.nanmax(wl) < 30.0:
        return wl * 1000.0
    return wl


_NM_IN_TEXT = re.compile(r"(\d+(?:\.\d*)?)\s*nm\b", re.IGNORECASE)


def wavelengths_from_names(names):
    """Wavelengths from band names such as `"550.0 nm"` (all of them, or None)."""
    if not names:
        return None
    found = [_NM_IN_TEXT.search(n or "") for n in names]
    if all(found):
        return np.array([float(m.group(1)) for m in found])
    return None


def default_band_names(wavelengths, n):
    """`"550.00 nm"`-style names of the first `n` wavelengths (None without wavelengths)."""
    if wavelengths is None:
        return None
    return [f"{w:.2f} nm" for w in np.asarray(wavelengths).reshape(-1)[:n]]


def hssdct_sample_files(prefix):
    """`(GT, lrhsi, hrmsi)` paths of one sample in the official HSSDCT layout."""
    prefix = os.fspath(prefix)
    if os.path.isdir(prefix):
        prefix = os.path.join(prefix, "")
    return prefix + "GT.npz.npy", prefix + "lrhsi.npz", prefix + "hrmsi.npz"


def format_module(name):
    """The optional package of the format `name` (`"GeoTIFF"`, `"ENVI"`), imported."""
    fmt = next(f for f in FORMATS if f.name == name)
    return optional_import(fmt.needs, f"Reading or writing {name} files", fmt.extra)
