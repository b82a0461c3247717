"""Writers: a `Raster` (or an array and its map metadata) to any format of the format table.

`open_writer(path, ...)` returns a `RasterWriter` that takes the output block by block
(`writer[r0:r1, c0:c1, :] = block`), so a scene larger than memory can be written tile by
tile; it writes to a temporary file next to `path` and renames it on `close()`, so an
interrupted run never leaves a half-written file under the final name. `write_raster` writes
a whole `Raster` that way. `write_cube` writes a plain cube (and its wavelengths) directly;
`write_mat73` and `write_hssdct_sample` write MATLAB v7.3 files and the official HSSDCT layout.

GeoTIFF wavelengths are written as band tags `wavelength` / `wavelength_units` and
`CENTRAL_WAVELENGTH_UM` in the `IMAGERY` domain (GDAL >= 3.10), which `readers` reads back.

One cohesive module (one writer per format behind `RasterWriter`, and the direct `write_cube`
sharing the MATLAB v7.3 header), hence over 450 lines.
"""

import contextlib
import os
import tempfile

import h5py
import numpy as np
import scipy.io

from keras_hsifusion.data.raster import footprints, formats, readers
from keras_hsifusion.data.raster.model import Raster, check_transform

__all__ = [
    "MATLAB_HEADER",
    "RasterWriter",
    "mark_matlab73",
    "open_writer",
    "umask_mode",
    "write_cube",
    "write_hssdct_sample",
    "write_mat73",
    "write_raster",
]


def umask_mode(path):
    """Gives `path` the permissions of a newly created file (temporary files are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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
        self._ext = formats.extension(self.path)
        if self._ext == ".img":
            raise ValueError(f"Write ENVI files through their header (.hdr). Received: {path}")
        if self._ext not in formats.EXTENSIONS:
            raise ValueError(
                f"Unsupported output extension {self._ext!r} for {path}. "
                f"Supported: {sorted(set(formats.EXTENSIONS) - {'.img'})}"
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
            formats.format_module("GeoTIFF")
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
            self._ds = readers.open_geotiff(self._tmp, "w+", **profile)
            names = m["band_names"] or formats.default_band_names(m["wavelengths"], C)
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
            spectral = formats.format_module("ENVI")
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
                umask_mode(self._data_tmp)
                os.replace(self._data_tmp, os.path.splitext(self.path)[0] + ".img")
            umask_mode(self._tmp)
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
                mark_matlab73(self._tmp)
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
    meta = {"band names": m["band_names"] or formats.default_band_names(m["wavelengths"], bands)}
    if meta["band names"] is None:
        del meta["band names"]
    if m["wavelengths"] is not None:
        meta["wavelength"] = [f"{float(w):.6g}" for w in m["wavelengths"]]
        meta["wavelength units"] = "Nanometers"
    if m["nodata"] is not None:
        meta["data ignore value"] = f"{m['nodata']:g}"
    meta.update(footprints.envi_map_info(m["transform"], m["crs"]))
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
        "transform": None if transform is None else check_transform(transform),
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


def write_cube(path, cube, wavelengths=None, key="cube", mat_version="5"):
    """Writes an `(H, W, C)` cube; the format follows the extension (see `read_cube`).

    Args:
        path: destination (`.mat`, `.npy`, `.npz`, `.h5`/`.hdf5`, `.hdr`, `.tif`/`.tiff`).
        cube: `(H, W, C)` array, written as float32.
        wavelengths: optional `(C,)` wavelengths in nm, one per band, in any order (not
            storable in `.npy`/`.tif`; `write_raster` stores them
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
        spectral = formats.optional_import("spectral", "Writing ENVI files")
        meta = {} if wavelengths is None else {"wavelength": list(map(float, wavelengths))}
        if wavelengths is not None:
            meta["wavelength units"] = "nm"
        spectral.envi.save_image(path, cube, dtype=np.float32, metadata=meta, force=True)
    elif ext in (".tif", ".tiff"):
        tifffile = formats.optional_import("tifffile", "Writing TIFF files")
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
    gt, lr, msi = formats.hssdct_sample_files(prefix)
    if not isinstance(hr_msi, dict):
        arr = np.asarray(hr_msi, np.float32)
        hr_msi = {msi_bands or arr.shape[-1]: arr}
    np.save(gt, np.asarray(hr_hsi, np.float32))
    np.savez(lr, lrhsi=np.asarray(lr_hsi, np.float32))
    np.savez(msi, **{f"hrmsi{n}": np.asarray(a, np.float32) for n, a in hr_msi.items()})
