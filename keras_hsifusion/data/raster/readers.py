"""Readers: one per format of the format table (`formats.py`), pixels, wavelengths and map grid.

`read_raster(path)` returns a `Raster` (the float32 `(H, W, C)` array with its CRS, transform,
nodata value, band names and wavelengths); `read_cube(path)` returns only `(array,
wavelengths)` and needs no georeferencing package (GeoTIFF pixels through tifffile). Both
dispatch on the extension. Files that cannot be read (corrupt, truncated, or not of the
format their extension says) raise `ValueError` naming the file.

GeoTIFF wavelengths are read from the band tags `wavelength` / `wavelength_units` (the names
GDAL's ENVI driver uses) or `CENTRAL_WAVELENGTH_UM` in the `IMAGERY` domain (GDAL >= 3.10), or
from band descriptions such as `"550.0 nm"`.
"""

import os
import warnings

import h5py
import numpy as np
import scipy.io

from keras_hsifusion.data.raster import footprints, formats
from keras_hsifusion.data.raster.model import Raster

__all__ = [
    "open_geotiff",
    "read_cube",
    "read_envi",
    "read_hssdct_sample",
    "read_raster",
    "read_tiff",
    "tiff_wavelengths",
]


def open_geotiff(path, mode="r", **profile):
    """`rasterio.open(path, mode, **profile)` without rasterio's not-georeferenced warning."""
    rasterio = formats.format_module("GeoTIFF")
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


def tiff_wavelengths(src, indexes):
    """`(len(indexes),)` band centres in nm of the 1-based bands `indexes` of an open rasterio
    dataset (band tags, else band descriptions), or None when some band has none."""
    wl = []
    for i in indexes:
        tags = src.tags(i)
        if "wavelength" in tags:
            wl.append(formats.to_nm(float(tags["wavelength"]), tags.get("wavelength_units"))[0])
            continue
        imagery = src.tags(i, ns="IMAGERY")
        if "CENTRAL_WAVELENGTH_UM" in imagery:
            wl.append(float(imagery["CENTRAL_WAVELENGTH_UM"]) * 1000.0)
    if len(wl) == len(indexes):
        return np.array(wl)
    return formats.wavelengths_from_names([src.descriptions[i - 1] or "" for i in indexes])


def read_tiff(path, bands=None, georeferenced=True):
    """A GeoTIFF as a `Raster`: through rasterio with its map grid, or (`georeferenced=False`)
    the pixels only through tifffile (planar `(bands, H, W)` pages moved to the end)."""
    if not georeferenced:
        tifffile = formats.optional_import("tifffile", "Reading TIFF files")
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            axes = series.axes
        if data.ndim == 3 and axes.endswith("YX"):  # planar: (bands, H, W)
            data = np.moveaxis(data, 0, -1)
        cube = formats.as_cube(data, path, None, "hwc")
        return Raster(cube if bands is None else cube[..., [int(b) for b in bands]], path=path)
    with open_geotiff(path) as src:
        count = src.count
        indexes = list(range(1, count + 1)) if bands is None else [int(b) + 1 for b in bands]
        data = np.moveaxis(src.read(indexes), 0, -1)
        crs = src.crs.to_string() if src.crs else None
        transform = tuple(src.transform)[:6]
        if crs is None and src.transform.is_identity:
            transform = None
        names = [src.descriptions[i - 1] for i in indexes]
        names = None if not any(names) else [n or "" for n in names]
        wl = tiff_wavelengths(src, indexes)
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


def read_envi(path, bands=None):
    """An ENVI file (`.hdr` or its `.img`) as a `Raster`; `bands` are read alone from disk."""
    spectral = formats.format_module("ENVI")
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
    crs, transform = footprints.envi_georef(meta)
    wl = None
    if meta.get("wavelength"):
        wl = formats.to_nm([float(v) for v in meta["wavelength"]], meta.get("wavelength units"))
    names = meta.get("band names")
    nodata = meta.get("data ignore value")
    pick = (lambda v: v) if bands is None else (lambda v: [v[int(b)] for b in bands])
    return Raster(
        data.astype(np.float32, copy=False),
        crs=footprints.normalise_crs(crs),
        transform=transform,
        nodata=None if nodata is None else float(nodata),
        wavelengths=None if wl is None else pick(list(wl)),
        band_names=None if not names else pick(list(names)),
        path=path,
    )


def _read_mat(path, key, layout, wavelengths_key):
    if h5py.is_hdf5(path):  # MATLAB v7.3 files are HDF5
        return _read_h5(path, key, layout, wavelengths_key, matlab=True)
    entries = scipy.io.loadmat(path)
    entries = {k: v for k, v in entries.items() if not k.startswith("__")}
    name = formats.pick_entry(entries, path, key)
    cube = formats.as_cube(entries[name], path, name, layout)
    return cube, formats.find_wavelengths(entries, cube.shape[-1], wavelengths_key)


def _read_h5(path, key, layout, wavelengths_key, matlab=False):
    with h5py.File(path, "r") as f:
        entries = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                entries[name] = obj

        f.visititems(visit)
        name = formats.pick_entry(entries, path, key)
        data = entries[name][()]
        if matlab:  # MATLAB writes column-major: reverse the axes to get MATLAB's order
            data = np.transpose(data)
        cube = formats.as_cube(data, path, name, layout)
        n = cube.shape[-1]
        candidates = dict(entries[name].attrs.items())
        wanted = {k for k, v in entries.items() if v.size == n or k == wavelengths_key}
        candidates.update({k: entries[k][()] for k in wanted - {name}})
        return cube, formats.find_wavelengths(candidates, n, wavelengths_key)


def _read_npy(path, key, layout, wavelengths_key):
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            entries = {k: data[k] for k in data.files}
        name = formats.pick_entry(entries, path, key)
        cube = formats.as_cube(entries[name], path, name, layout)
        return cube, formats.find_wavelengths(entries, cube.shape[-1], wavelengths_key)
    arr = np.load(path, allow_pickle=False)
    return formats.as_cube(arr, path, None, layout), None


def _read_envi_cube(path, key, layout, wavelengths_key):
    raster = read_envi(path)
    return np.ascontiguousarray(raster.array, np.float32), raster.wavelengths


def _read_tiff_cube(path, key, layout, wavelengths_key):
    return read_tiff(path, georeferenced=False).array, None


_CUBE_READERS = {
    "GeoTIFF": _read_tiff_cube,
    "ENVI": _read_envi_cube,
    "HDF5": _read_h5,
    "MATLAB": _read_mat,
    "NPZ": _read_npy,
    "NPY": _read_npy,
}


def _checked(path):
    path = os.fspath(path)
    fmt = formats.file_format(path)
    if fmt is None:
        raise ValueError(
            f"Unsupported file extension {formats.extension(path)!r} for {path}. "
            f"Supported: {sorted(formats.EXTENSIONS)}"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    return path, fmt


def read_cube(path, key=None, layout="hwc", wavelengths_key=None):
    """Reads a hyperspectral (or multispectral) cube, dispatching on the file extension.

    Args:
        path: file path (`.mat`, `.npy`, `.npz`, `.h5`/`.hdf5`, `.hdr`/`.img`, `.tif`/`.tiff`).
        key: name of the array inside `.mat`, `.npz` and HDF5 files. Defaults to the only
            3-D array of the file (the only 2-D one if there is no 3-D one).
        layout: `"hwc"` (default) or `"chw"` for files that store bands first (`.mat`,
            `.npy`, `.npz`, HDF5; ENVI and TIFF layouts are read from the file).
        wavelengths_key: name of the wavelengths array; defaults to the first of
            `wavelengths`, `wavelength`, `wl`, `lambda` (any case) with C entries (None if
            there is none). A named array that is missing is a `KeyError`, one without C
            entries a `ValueError`.

    Returns:
        `(cube, wavelengths)`: float32 `(H, W, C)` and float64 `(C,)` or `None`.

    Examples:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "scene.mat")
    >>> from keras_hsifusion.data.raster.writer import write_cube
    >>> write_cube(path, np.ones((4, 5, 3)), wavelengths=[450, 550, 650], key="hsi")
    >>> cube, wl = read_cube(path, key="hsi")
    >>> cube.shape, str(cube.dtype), wl.tolist()
    ((4, 5, 3), 'float32', [450.0, 550.0, 650.0])
    """
    path, fmt = _checked(path)
    ext = formats.extension(path)
    try:
        return _CUBE_READERS[fmt.name](path, key, layout, wavelengths_key)
    except (ImportError, FileNotFoundError):
        raise
    except KeyError as e:
        if path in str(e):
            raise
        raise KeyError(f"{path}: {e.args[0]}") from e
    except ValueError as e:
        if path in str(e):
            raise
        raise ValueError(f"Could not read {path} as a {ext} cube: {e}") from e
    except Exception as e:  # corrupt or truncated files raise many different errors
        raise ValueError(
            f"Could not read {path} as a {ext} cube (corrupt, truncated, or not a {ext} file): "
            f"{type(e).__name__}: {e}"
        ) from e


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
    if formats.extension(path) == ".npy":
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
    wl = formats.find_wavelengths(entries, count)
    return part, None if wl is None else wl[idx]


def _read_other(path, key, layout, bands):
    ext = formats.extension(path)
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
        cube, wl = read_cube(path, key=key, layout=layout)
        crs = transform = nodata = names = None
        if ext in (".h5", ".hdf5", ".he5") or (ext == ".mat" and h5py.is_hdf5(path)):
            crs, transform, nodata, names = _read_h5_meta(path, key)
        elif ext == ".mat":
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
    >>> from keras_hsifusion.data.raster.writer import write_raster
    >>> write_raster(path, np.ones((4, 6, 2)), crs="EPSG:32616",
    ...              transform=(30, 0, 500000, 0, -30, 4400000), wavelengths=[550, 850])
    >>> r = read_raster(path)
    >>> r.shape, r.crs, r.transform[:3], r.wavelengths.tolist()
    ((4, 6, 2), 'EPSG:32616', (30.0, 0.0, 500000.0), [550.0, 850.0])
    """
    path, fmt = _checked(path)
    try:
        if fmt.name == "GeoTIFF":
            return read_tiff(path, bands)
        if fmt.name == "ENVI":
            return read_envi(path, bands)
        return _read_other(path, key, layout, bands)
    except (ImportError, FileNotFoundError, KeyError):
        raise
    except ValueError as e:
        if path in str(e):
            raise
        raise ValueError(f"Could not read {path}: {e}") from e
    except Exception as e:  # corrupt files raise many different errors
        raise ValueError(f"Could not read {path}: {type(e).__name__}: {e}") from e


def read_hssdct_sample(prefix, msi_bands=4, lrhsi_key="lrhsi"):
    """Reads one sample in the layout of the official HSSDCT data loader.

    The official loader reads `<prefix>GT.npz.npy` (HR-HSI, `(H, W, C)`), `<prefix>lrhsi.npz`
    (key `lrhsi`, or `lrhsi1`.. for misaligned variants) and `<prefix>hrmsi.npz` (keys
    `hrmsi4`, `hrmsi6`). `prefix` may also be a folder holding those three files.

    Args:
        prefix: path prefix of the three files, or their folder.
        msi_bands: 4 or 6: which `hrmsi{n}` array to read. Defaults to 4.
        lrhsi_key: key in `lrhsi.npz`. Defaults to `"lrhsi"`.

    Returns:
        dict with float32 `"lr_hsi"`, `"hr_msi"`, `"hr_hsi"`, all channels-last, as stored
        (the official loader's [-1, 1] rescaling is a training choice and is not applied).
    """
    gt, lr, msi = formats.hssdct_sample_files(prefix)
    return {
        "lr_hsi": read_cube(lr, key=lrhsi_key)[0],
        "hr_msi": read_cube(msi, key=f"hrmsi{msi_bands}")[0],
        "hr_hsi": read_cube(gt)[0],
    }
