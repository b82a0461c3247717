"""Reading and writing hyperspectral cubes in the formats users have.

| extension | reader | notes |
|---|---|---|
| `.mat` | scipy (v4-v7.2), h5py (v7.3) | v7.3 arrays are transposed back to MATLAB's order |
| `.npy`, `.npz` | numpy | including the official HSSDCT layout (`read_hssdct_sample`) |
| `.h5`, `.hdf5` | h5py | |
| `.hdr` / `.img` | `spectral` (optional) | ENVI; wavelengths from the header |
| `.tif`, `.tiff` | `tifffile` (optional) | planar `(bands, H, W)` pages are moved to the end |

Every reader returns `(cube, wavelengths)`: a float32 `(H, W, C)` array (a 2-D image becomes
`(H, W, 1)`) and a float64 `(C,)` array of wavelengths, or `None` when the file has none.
Files that cannot be read (corrupt, truncated, or not of the format their extension says)
raise `ValueError` naming the file.

`write_cube(..., mat_version="7.3")` writes MATLAB v7.3 (HDF5) files.
Georeferencing (CRS, affine transform, nodata) and GeoTIFF through `rasterio` are in
`keras_hsifusion.data.raster` (`read_raster`, `write_raster`, `open_writer`).
"""

import os

import h5py
import numpy as np
import scipy.io

__all__ = ["read_cube", "read_hssdct_sample", "write_cube", "write_hssdct_sample"]

_WAVELENGTH_KEYS = ("wavelengths", "wavelength", "wavelengths_nm", "wavelength_nm", "wl", "lambda")
_EXTRA = "pip install keras-hsifusion[datasets]"


def _optional(module, what):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        raise ImportError(f"{what} needs the optional package `{module}`: {_EXTRA}") from e


def _as_cube(array, path, key, layout):
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


def _pick(entries, path, key):
    """Chooses the cube among named arrays: `key`, or the only array with >= 2 dims."""
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


def _wavelengths(entries, n_bands, key=None):
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
    names = [k for k in entries if k.lower() in _WAVELENGTH_KEYS]
    for name in names:
        if name in entries:
            wl = np.asarray(entries[name], dtype=np.float64).reshape(-1)
            if wl.size == n_bands:
                return wl
    return None


def _read_mat(path, key, layout, wavelengths_key):
    if h5py.is_hdf5(path):  # MATLAB v7.3 files are HDF5
        return _read_h5(path, key, layout, wavelengths_key, matlab=True)
    entries = scipy.io.loadmat(path)
    entries = {k: v for k, v in entries.items() if not k.startswith("__")}
    name = _pick(entries, path, key)
    cube = _as_cube(entries[name], path, name, layout)
    return cube, _wavelengths(entries, cube.shape[-1], wavelengths_key)


def _read_h5(path, key, layout, wavelengths_key, matlab=False):
    with h5py.File(path, "r") as f:
        entries = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                entries[name] = obj

        f.visititems(visit)
        name = _pick(entries, path, key)
        data = entries[name][()]
        if matlab:  # MATLAB writes column-major: reverse the axes to get MATLAB's order
            data = np.transpose(data)
        cube = _as_cube(data, path, name, layout)
        n = cube.shape[-1]
        candidates = dict(entries[name].attrs.items())
        wanted = {k for k, v in entries.items() if v.size == n or k == wavelengths_key}
        candidates.update({k: entries[k][()] for k in wanted - {name}})
        return cube, _wavelengths(candidates, n, wavelengths_key)


def _read_npy(path, key, layout, wavelengths_key):
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            entries = {k: data[k] for k in data.files}
        name = _pick(entries, path, key)
        cube = _as_cube(entries[name], path, name, layout)
        return cube, _wavelengths(entries, cube.shape[-1], wavelengths_key)
    arr = np.load(path, allow_pickle=False)
    return _as_cube(arr, path, None, layout), None


def _read_envi(path, key, layout, wavelengths_key):
    spectral = _optional("spectral", "Reading ENVI files")
    hdr = path if path.endswith(".hdr") else os.path.splitext(path)[0] + ".hdr"
    if not os.path.exists(hdr):
        raise FileNotFoundError(f"{path}: ENVI header {hdr} not found")
    img = spectral.envi.open(hdr)
    data = np.asarray(img.load())
    cube = _as_cube(data, path, None, "hwc")
    wl = None
    if getattr(img, "bands", None) is not None and img.bands.centers:
        wl = np.asarray(img.bands.centers, dtype=np.float64)
        if getattr(img.bands, "band_unit", "") in ("um", "micrometers", "Micrometers", "µm"):
            wl = wl * 1000.0
    return cube, wl


def _read_tiff(path, key, layout, wavelengths_key):
    tifffile = _optional("tifffile", "Reading TIFF files")
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = series.axes
    if data.ndim == 3 and axes.endswith("YX"):  # planar: (bands, H, W)
        data = np.moveaxis(data, 0, -1)
    return _as_cube(data, path, None, "hwc"), None


_READERS = {
    ".mat": _read_mat,
    ".npy": _read_npy,
    ".npz": _read_npy,
    ".h5": _read_h5,
    ".hdf5": _read_h5,
    ".he5": _read_h5,
    ".hdr": _read_envi,
    ".img": _read_envi,
    ".tif": _read_tiff,
    ".tiff": _read_tiff,
}


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
    >>> write_cube(path, np.ones((4, 5, 3)), wavelengths=[450, 550, 650], key="hsi")
    >>> cube, wl = read_cube(path, key="hsi")
    >>> cube.shape, str(cube.dtype), wl.tolist()
    ((4, 5, 3), 'float32', [450.0, 550.0, 650.0])
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _READERS:
        raise ValueError(
            f"Unsupported file extension {ext!r} for {path}. Supported: {sorted(_READERS)}"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    try:
        return _READERS[ext](path, key, layout, wavelengths_key)
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


def write_cube(path, cube, wavelengths=None, key="cube", mat_version="5"):
    """Writes an `(H, W, C)` cube; the format follows the extension (see `read_cube`).

    Args:
        path: destination (`.mat`, `.npy`, `.npz`, `.h5`/`.hdf5`, `.hdr`, `.tif`/`.tiff`).
        cube: `(H, W, C)` array, written as float32.
        wavelengths: optional `(C,)` wavelengths in nm, one per band, in any order (not
            storable in `.npy`/`.tif`; `keras_hsifusion.data.raster.write_raster` stores them
            in GeoTIFF band tags).
        key: array name in `.mat`, `.npz` and HDF5 files. Defaults to `"cube"`.
        mat_version: `"5"` (default, scipy) or `"7.3"` (HDF5 with MATLAB's header and
            column-major order, for cubes over 2 GB) for `.mat` files.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    cube = np.asarray(cube, dtype=np.float32)
    if cube.ndim != 3:
        raise ValueError(f"`cube` must be (H, W, C). Received shape {cube.shape}")
    extra = {}
    if wavelengths is not None:
        extra["wavelengths"] = np.asarray(wavelengths, np.float64).reshape(-1)
        if extra["wavelengths"].size != cube.shape[-1]:
            raise ValueError(
                f"`wavelengths` must have one entry per band ({cube.shape[-1]}). Received "
                f"{extra['wavelengths'].size} wavelengths"
            )
    if ext == ".mat" and str(mat_version) not in ("5", "7.3"):
        raise ValueError(f"`mat_version` must be '5' or '7.3'. Received: {mat_version!r}")
    if ext == ".mat" and str(mat_version) == "7.3":
        arrays = {key: cube}
        if wavelengths is not None:
            arrays["wavelengths"] = extra["wavelengths"][None, :]
        write_mat73(path, arrays)
    elif ext == ".mat":
        scipy.io.savemat(path, {key: cube, **extra})
    elif ext == ".npz":
        np.savez(path, **{key: cube}, **extra)
    elif ext in (".npy", ".tif", ".tiff") and wavelengths is not None:
        raise ValueError(f"{ext} files cannot store `wavelengths`; use .npz, .mat, .h5 or .hdr")
    elif ext == ".npy":
        np.save(path, cube)
    elif ext in (".h5", ".hdf5"):
        with h5py.File(path, "w") as f:
            f.create_dataset(key, data=cube)
            if wavelengths is not None:
                f.create_dataset("wavelengths", data=extra["wavelengths"])
    elif ext == ".hdr":
        spectral = _optional("spectral", "Writing ENVI files")
        meta = {} if wavelengths is None else {"wavelength": list(map(float, wavelengths))}
        if wavelengths is not None:
            meta["wavelength units"] = "nm"
        spectral.envi.save_image(path, cube, dtype=np.float32, metadata=meta, force=True)
    elif ext in (".tif", ".tiff"):
        tifffile = _optional("tifffile", "Writing TIFF files")
        tifffile.imwrite(path, cube, photometric="minisblack", planarconfig="contig")
    else:
        raise ValueError(f"Unsupported file extension {ext!r} for {path}")


MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 ."
_MATLAB_CLASSES = {"float32": "single", "float64": "double", "uint16": "char"}


def mark_matlab73(path):
    """Writes MATLAB's 128-byte v7.3 header into the 512-byte user block of an HDF5 file."""
    with open(path, "r+b") as f:
        f.write(MATLAB_HEADER.ljust(124, b" ") + b"\x00\x02IM")


def write_mat73(path, arrays):
    """Writes numeric arrays as a MATLAB v7.3 file (HDF5, column-major, MATLAB classes).

    Args:
        path: destination `.mat` file.
        arrays: `{name: array}` of float32, float64 or uint16 (MATLAB `char`) arrays, in
            MATLAB's (row-major in numpy) order; they are stored transposed as MATLAB does.
    """
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in arrays.items():
            value = np.asarray(value)
            ds = f.create_dataset(name, data=np.transpose(value))
            ds.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASSES.get(str(value.dtype), "double"))
            if value.dtype == np.uint16:
                ds.attrs["MATLAB_int_decode"] = np.int32(2)
    mark_matlab73(path)


def _prefix_files(prefix):
    prefix = os.fspath(prefix)
    if os.path.isdir(prefix):
        prefix = os.path.join(prefix, "")
    return prefix + "GT.npz.npy", prefix + "lrhsi.npz", prefix + "hrmsi.npz"


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
    gt, lr, msi = _prefix_files(prefix)
    return {
        "lr_hsi": read_cube(lr, key=lrhsi_key)[0],
        "hr_msi": read_cube(msi, key=f"hrmsi{msi_bands}")[0],
        "hr_hsi": read_cube(gt)[0],
    }


def write_hssdct_sample(prefix, hr_hsi, lr_hsi, hr_msi, msi_bands=None):
    """Writes one sample in the official HSSDCT layout (see `read_hssdct_sample`).

    Args:
        prefix: path prefix (or existing folder) of the three files.
        hr_hsi: `(H, W, C)`, saved as `<prefix>GT.npz.npy`.
        lr_hsi: `(h, w, C)`, saved under key `lrhsi` of `<prefix>lrhsi.npz`.
        hr_msi: `(H, W, c)` or a dict `{n_bands: array}`, saved as `hrmsi{c}` keys of
            `<prefix>hrmsi.npz`.
        msi_bands: unused when `hr_msi` is a dict; otherwise defaults to `hr_msi.shape[-1]`.
    """
    gt, lr, msi = _prefix_files(prefix)
    if not isinstance(hr_msi, dict):
        arr = np.asarray(hr_msi, np.float32)
        hr_msi = {msi_bands or arr.shape[-1]: arr}
    np.save(gt, np.asarray(hr_hsi, np.float32))
    np.savez(lr, lrhsi=np.asarray(lr_hsi, np.float32))
    np.savez(msi, **{f"hrmsi{n}": np.asarray(a, np.float32) for n, a in hr_msi.items()})
