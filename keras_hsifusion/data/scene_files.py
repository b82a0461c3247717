"""Reference scenes in files: one file, a list of files or a folder, read window by window.

`open_scenes(spec)` turns a path, a list of paths or a folder into a `SceneCollection`: one
`Scene` per file (every readable file of a folder) or per CAVE-style folder of single-band
PNGs (`<scene>/<scene>_01.png ... <scene>_31.png`, 8- or 16-bit, band order from the number
at the end of each file name; CAVE's own nesting `<scene>/<scene>/*.png` is accepted). Each
scene knows its `shape`, its `wavelengths` (from the file, or None) and reads any window
`read(rows, cols)` as float32 `(h, w, C)` in the file's units.

| file | read with | a window reads |
|---|---|---|
| `.npy` | numpy memory map | that window only |
| `.h5`, `.hdf5`, `.he5`, `.mat` v7.3 | h5py slicing | that window only (v7.3 transposed back) |
| `.tif`, `.tiff` | rasterio windows (tifffile without rasterio) | that window (tifffile: all) |
| `.hdr` / `.img` (ENVI) | spectral `read_subregion` | that window only |
| `.mat` v5-v7.2, `.npz` | scipy, numpy | the whole array, loaded once |
| folder of single-band PNGs | Pillow | every band, decoded once |

Formats that cannot be sliced on disk (the last two rows) are loaded whole the first time a
window is read and kept in one least-recently-used cache shared by all scenes
(`EAGER_CACHE_BYTES`, 2 GiB by default): memory stays bounded, but a collection of such files
larger than the cache is decoded again and again; convert it to `.npy`, HDF5 or GeoTIFF
(`keras_hsifusion.data.write_raster`) to train on it from disk.

Arrays are `(H, W, C)` with the bands last (MATLAB v7.3 files are transposed back as
`read_cube` does; GeoTIFF and ENVI layouts are read from the file); a 2-D array is one band.

One cohesive module (one reader per format behind the one `Scene` interface, the folder
conventions that find them and the cache they share), hence over 450 lines.

Examples:
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> for name in ("a", "b"):
...     np.save(os.path.join(folder, f"{name}.npy"), np.ones((8, 6, 3), "float32"))
>>> scenes = open_scenes(folder, wavelengths=[450, 550, 650])
>>> scenes.names, scenes[0].shape, scenes[1].read((2, 4), (0, 3)).shape
(['a', 'b'], (8, 6, 3), (2, 3, 3))
"""

import collections
import math
import os
import re
import threading
import types
import zipfile

import h5py
import numpy as np

from keras_hsifusion.data.raster import formats, readers

__all__ = [
    "EAGER_CACHE_BYTES",
    "SCENE_EXTENSIONS",
    "Scene",
    "SceneCollection",
    "find_scenes",
    "open_scene",
    "open_scenes",
    "region_statistics",
]

SCENE_EXTENSIONS = formats.EXTENSIONS
# Scenes loaded whole (.mat v5, .npz, PNG folders) share this many bytes of cache.
EAGER_CACHE_BYTES = 2 * 1024**3
_BAND_NUMBER = re.compile(r"(\d+)$")


def _ext(path):
    return os.path.splitext(path)[1].lower()


def _png_bands(folder):
    """`[(number, path)]` of the numbered PNGs of `folder`, in band order."""
    found = []
    for entry in os.listdir(folder):
        stem, ext = os.path.splitext(entry)
        match = _BAND_NUMBER.search(stem)
        if ext.lower() == ".png" and match and not entry.startswith("."):
            found.append((int(match.group(1)), os.path.join(folder, entry)))
    return sorted(found)


def _png_folder(folder):
    """The folder holding the band PNGs of a scene folder (itself, or CAVE's `x/x/`), or None."""
    if _png_bands(folder):
        return folder
    inner = os.path.join(folder, os.path.basename(os.path.normpath(folder)))
    return inner if os.path.isdir(inner) and _png_bands(inner) else None


def _scan_folder(folder, name):
    if _png_folder(folder):
        return [(os.path.basename(os.path.normpath(folder)), folder, "png")]
    found = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.startswith("."):
            continue
        if os.path.isdir(path):
            if _png_folder(path):
                found.append((entry, path, "png"))
        elif _ext(entry) in SCENE_EXTENSIONS and _ext(entry) != ".img":  # ENVI: its .hdr
            found.append((os.path.splitext(entry)[0], path, "file"))
    if not found:
        raise ValueError(
            f"`{name}`: no scene in folder {folder!r} (files {list(SCENE_EXTENSIONS)} or "
            "folders of numbered single-band PNGs)."
        )
    return found


def find_scenes(spec, name="scene"):
    """The scenes a spec names, without reading them.

    Args:
        spec: a path (file or folder) or a list of paths. A folder is one scene when it holds
            numbered single-band PNGs (directly, or in a subfolder of the same name as CAVE
            does), else a collection: its readable files and its PNG scene folders (not
            deeper).
        name: the argument's name in error messages (e.g. `"data.scene"`).

    Returns:
        `[(scene_name, path, kind)]`, kind `"file"` or `"png"`; the scene name is the file
        name without its extension, or the folder name.
    """
    entries = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not entries:
        raise ValueError(f"`{name}` must name at least one file or folder. Received: {spec!r}")
    found = []
    for entry in entries:
        if not isinstance(entry, (str, os.PathLike)) or not os.fspath(entry):
            raise ValueError(
                f"`{name}` takes a path or a list of paths. Received: {name}={entry!r}"
            )
        path = os.fspath(entry)
        if os.path.isdir(path):
            found += _scan_folder(path, name)
        elif not os.path.isfile(path):
            raise ValueError(f"`{name}`: no such file or folder: {path!r}")
        elif _ext(path) not in SCENE_EXTENSIONS:
            raise ValueError(
                f"`{name}`: unsupported file type {_ext(path)!r}: {path!r}. Supported: "
                f"{list(SCENE_EXTENSIONS)} or a folder of numbered single-band PNGs"
            )
        else:
            if _ext(path) == ".img":
                path = os.path.splitext(path)[0] + ".hdr"
            found.append((os.path.splitext(os.path.basename(path))[0], path, "file"))
    seen = {}
    for scene, path, _ in found:
        if scene in seen and os.path.abspath(seen[scene]) != os.path.abspath(path):
            raise ValueError(
                f"`{name}`: two scenes named {scene!r} ({seen[scene]!r}, {path!r}); scene "
                "names (file names without extension) must be unique."
            )
        seen[scene] = path
    unique = {os.path.abspath(p): (s, p, k) for s, p, k in found}
    return list(unique.values())


class _Cache:
    """Least-recently-used arrays, at most `max_bytes` in all (one item always kept)."""

    def __init__(self, max_bytes):
        self.max_bytes, self.items, self.lock = (
            max_bytes,
            collections.OrderedDict(),
            threading.Lock(),
        )

    def get(self, key, load):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = load()
        with self.lock:
            self.items[key] = value
            limit = EAGER_CACHE_BYTES if self.max_bytes is None else self.max_bytes
            while len(self.items) > 1 and sum(v.nbytes for v in self.items.values()) > limit:
                self.items.popitem(last=False)
        return value


_CACHE = _Cache(None)


def _bounds(index, size, axis):
    if index is None:
        return 0, size
    start, stop = (index.start, index.stop) if isinstance(index, slice) else index
    start, stop = 0 if start is None else int(start), size if stop is None else int(stop)
    if not 0 <= start < stop <= size:
        raise ValueError(f"Window {axis} ({start}, {stop}) is outside the scene (size {size}).")
    return start, stop


class Scene:
    """One reference scene: its size, band centres and a reader of windows.

    Made by `open_scene` / `open_scenes` (files) or directly from an array.

    Args:
        array: an `(H, W, C)` array (or `(H, W)`), kept as given.
        name: the scene's name. Defaults to `"scene"`.
        wavelengths: optional `(C,)` band centres in nm.

    Attributes:
        name, path (None for an array), shape `(H, W, C)`, wavelengths (`(C,)` or None),
        lazy (True when a window read touches only that window on disk).
    """

    lazy = True
    path = None

    def __init__(self, array, name="scene", wavelengths=None):
        array = np.asarray(array)
        self._array = array[..., None] if array.ndim == 2 else array
        self._setup(name, self._array.shape, wavelengths, "array")

    def _setup(self, name, shape, wavelengths, what):
        shape = tuple(int(s) for s in shape)
        if len(shape) == 2:
            shape += (1,)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"{what}: expected an (H, W, C) cube. Received shape {shape}")
        self.name, self.shape, self._handle, self._pid = name, shape, None, None
        if wavelengths is not None:
            wavelengths = np.asarray(wavelengths, np.float64).reshape(-1)
            if wavelengths.size != shape[-1]:
                wavelengths = None  # a file's list that does not match its bands
        self.wavelengths = wavelengths

    def read(self, rows=None, cols=None):
        """The window `[rows, cols]` (`(start, stop)` pairs or slices), float32 `(h, w, C)`."""
        r0, r1 = _bounds(rows, self.shape[0], "rows")
        c0, c1 = _bounds(cols, self.shape[1], "cols")
        block = np.asarray(self._read(r0, r1, c0, c1))
        if block.ndim == 2:
            block = block[..., None]
        return np.array(block, dtype=np.float32)  # a copy: never a view of a cache or memmap

    def _read(self, r0, r1, c0, c1):
        return self._array[r0:r1, c0:c1]

    def _file(self, opener):
        # one handle per process: a forked worker (PyDataset multiprocessing) opens its own
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = opener(), os.getpid()
        return self._handle

    def close(self):
        """Closes the file handle kept open between reads (reopened when needed)."""
        if self._handle is not None:
            self._handle.close()
        self._handle = None

    def __getstate__(self):  # file handles do not travel to worker processes
        state = dict(self.__dict__)
        state["_handle"] = None
        return state

    def __repr__(self):
        where = f", path={self.path!r}" if self.path else ""
        return f"<{type(self).__name__} {self.name!r} shape={self.shape}{where}>"


class _NpyScene(Scene):
    def __init__(self, path, name, key):
        self.path = path
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{path}: not a numeric array (dtype {arr.dtype})")
        self._setup(name, arr.shape, None, path)

    def _read(self, r0, r1, c0, c1):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)[r0:r1, c0:c1]


class _H5Scene(Scene):
    def __init__(self, path, name, key, matlab):
        self.path, self.matlab = path, matlab
        with h5py.File(path, "r") as f:
            entries = {}

            def visit(name, obj):  # returns None: visititems stops at the first non-None
                if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                    entries[name] = obj

            f.visititems(visit)
            self.key = formats.pick_entry(entries, path, key)
            ds = entries[self.key]
            shape = ds.shape[::-1] if matlab else ds.shape
            bands = shape[-1] if len(shape) == 3 else 1
            meta = dict(ds.attrs.items())
            meta.update({k: v[()] for k, v in entries.items() if k != self.key and v.size == bands})
        self._setup(name, shape, formats.find_wavelengths(meta, bands), path)

    def _read(self, r0, r1, c0, c1):
        ds = self._file(lambda: h5py.File(self.path, "r"))[self.key]
        if self.matlab:  # stored column-major: (C, W, H)
            return np.transpose(ds[..., c0:c1, r0:r1])
        return ds[r0:r1, c0:c1]


class _TiffScene(Scene):
    def __init__(self, path, name, key):
        self.path = path
        with self._open() as src:
            wl = readers.tiff_wavelengths(src, range(1, src.count + 1))
            self._setup(name, (src.height, src.width, src.count), wl, path)

    def _open(self):
        return readers.open_geotiff(self.path)

    def _read(self, r0, r1, c0, c1):
        from rasterio.windows import Window

        return np.moveaxis(
            self._file(self._open).read(window=Window(c0, r0, c1 - c0, r1 - r0)), 0, -1
        )


class _EnviScene(Scene):
    def __init__(self, path, name, key):
        spectral = formats.format_module("ENVI")
        self.path = path
        img = spectral.envi.open(path)
        meta, wl = img.metadata, None
        if meta.get("wavelength"):
            wl = formats.to_nm([float(v) for v in meta["wavelength"]], meta.get("wavelength units"))
        self._setup(name, (img.nrows, img.ncols, img.nbands), wl, path)

    def _read(self, r0, r1, c0, c1):
        img = self._file(lambda: formats.format_module("ENVI").envi.open(self.path))
        return img.read_subregion((r0, r1), (c0, c1))

    def close(self):
        self._handle = None  # spectral opens the file per read


class _EagerScene(Scene):
    """A file that cannot be read by windows: loaded whole into the shared cache."""

    lazy = False

    def _cache_key(self):
        stat = os.stat(self.path)
        return (os.path.abspath(self.path), getattr(self, "key", None), stat.st_mtime_ns)

    def _read(self, r0, r1, c0, c1):
        return _CACHE.get(self._cache_key(), self._load)[r0:r1, c0:c1]

    def _load(self):
        return readers.read_cube(self.path, key=getattr(self, "key", None))[0]


class _MatScene(_EagerScene):
    def __init__(self, path, name, key):
        import scipy.io

        self.path = path
        entries = {
            n: types.SimpleNamespace(shape=s)
            for n, s, _ in scipy.io.whosmat(path)
            if not n.startswith("__")
        }
        self.key = formats.pick_entry(entries, path, key)
        shape = entries[self.key].shape
        bands = shape[-1] if len(shape) == 3 else 1
        names = [n for n in entries if n.lower() in formats.WAVELENGTH_KEYS]
        meta = scipy.io.loadmat(path, variable_names=names) if names else {}
        self._setup(name, shape, formats.find_wavelengths(meta, bands), path)


class _NpzScene(_EagerScene):
    def __init__(self, path, name, key):
        self.path = path
        entries = {}
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.filename.endswith(".npy"):
                    with z.open(info) as f:
                        version = np.lib.format.read_magic(f)
                        header = (
                            np.lib.format.read_array_header_1_0
                            if version == (1, 0)
                            else np.lib.format.read_array_header_2_0
                        )
                        shape = header(f)[0]
                    entries[info.filename[:-4]] = types.SimpleNamespace(shape=shape)
        self.key = formats.pick_entry(entries, path, key)
        shape = entries[self.key].shape
        bands = shape[-1] if len(shape) == 3 else 1
        names = [n for n in entries if n.lower() in formats.WAVELENGTH_KEYS]
        with np.load(path, allow_pickle=False) as data:
            meta = {n: data[n] for n in names}
        self._setup(name, shape, formats.find_wavelengths(meta, bands), path)


class _TiffFileScene(_EagerScene):
    def __init__(self, path, name, key):
        self.path = path
        self._setup(name, _CACHE.get(self._cache_key(), self._load).shape, None, path)


class _PngScene(_EagerScene):
    def __init__(self, folder, name):
        image = formats.optional_import("PIL.Image", "Reading PNG scenes")
        self.path = folder
        self.files = [p for _, p in _png_bands(_png_folder(folder))]
        with image.open(self.files[0]) as im:
            width, height = im.size
        self._setup(name, (height, width, len(self.files)), None, folder)

    def _cache_key(self):
        return (os.path.abspath(self.path), tuple(os.stat(p).st_mtime_ns for p in self.files))

    def _load(self):
        image = formats.optional_import("PIL.Image", "Reading PNG scenes")
        bands = []
        for path in self.files:
            with image.open(path) as im:
                band = np.asarray(im)
            band = band[..., 0] if band.ndim == 3 else band  # an RGB(A)-stored band: one channel
            if band.shape != self.shape[:2]:
                raise ValueError(
                    f"{path}: band of size {band.shape} in a scene of size {self.shape[:2]}"
                )
            bands.append(band.astype(np.float32))
        return np.stack(bands, axis=-1)


def open_scene(path, name=None, key=None):
    """Opens one scene file (or PNG scene folder) without reading its pixels.

    Args:
        path: a file (see the module docstring) or a folder of numbered single-band PNGs.
        name: the scene's name. Defaults to the file name without its extension.
        key: the array's name in `.mat`, `.npz` and HDF5 files (default: the only 3-D one).

    Returns:
        A `Scene`.
    """
    path = os.fspath(path)
    name = name or os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    ext = _ext(path)
    try:
        if os.path.isdir(path):
            if _png_folder(path) is None:
                raise ValueError(f"{path}: not a folder of numbered single-band PNGs")
            return _PngScene(path, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such file: {path}")
        if ext in (".h5", ".hdf5", ".he5") or (ext == ".mat" and h5py.is_hdf5(path)):
            return _H5Scene(path, name, key, matlab=ext == ".mat")
        readers = {".npy": _NpyScene, ".mat": _MatScene, ".npz": _NpzScene}
        if ext in (".hdr", ".img"):
            return _EnviScene(os.path.splitext(path)[0] + ".hdr", name, key)
        if ext in (".tif", ".tiff"):
            try:
                import rasterio  # noqa: F401
            except ImportError:
                return _TiffFileScene(path, name, key)
            return _TiffScene(path, name, key)
        if ext not in readers:
            raise ValueError(f"Unsupported file type {ext!r}. Supported: {list(SCENE_EXTENSIONS)}")
        return readers[ext](path, name, key)
    except (ImportError, FileNotFoundError):
        raise
    except (KeyError, ValueError) as e:
        message = str(e.args[0]) if e.args else str(e)
        raise ValueError(message if path in message else f"{path}: {message}") from e
    except Exception as e:  # corrupt or truncated files raise many different errors
        raise ValueError(f"Could not open {path} as a scene: {type(e).__name__}: {e}") from e


class SceneCollection:
    """Scenes of one band set (the same C bands, the same band centres).

    Args:
        scenes: a list of `Scene`s.
        wavelengths: optional `(C,)` band centres in nm for every scene (they override the
            files'); without them, the files' band centres, which must agree.
        prefix: prefix of argument names in error messages (`"data."` for a config).

    Attributes:
        scenes, names, bands (C), wavelengths (`(C,)` float64 or None when no file has them
        and none were given).
    """

    def __init__(self, scenes, wavelengths=None, prefix=""):
        self.scenes, self.prefix = list(scenes), prefix
        if not self.scenes:
            raise ValueError(f"`{prefix}scene`: no scene given.")
        bands = {s.shape[-1] for s in self.scenes}
        if len(bands) != 1:
            sizes = {s.name: s.shape[-1] for s in self.scenes}
            raise ValueError(f"`{prefix}scene`: scenes have different band counts: {sizes}")
        self.bands = bands.pop()
        self.names = [s.name for s in self.scenes]
        if wavelengths is not None:
            wl = np.asarray(wavelengths, np.float64).reshape(-1)
            if wl.size != self.bands:
                raise ValueError(
                    f"`{prefix}wavelengths` must have one entry per band ({self.bands}). "
                    f"Received {wl.size} values"
                )
        else:
            known = [s for s in self.scenes if s.wavelengths is not None]
            wl = known[0].wavelengths if known else None
            for s in known[1:]:
                if not np.allclose(s.wavelengths, wl, rtol=0, atol=0.5):
                    raise ValueError(
                        f"`{prefix}scene`: scenes {known[0].name!r} and {s.name!r} have "
                        f"different band centres; give `{prefix}wavelengths` to use one list."
                    )
        self.wavelengths = wl

    def __len__(self):
        return len(self.scenes)

    def __iter__(self):
        return iter(self.scenes)

    def __getitem__(self, index):
        return self.scenes[self.index(index) if isinstance(index, str) else index]

    def index(self, entry, name=None):
        """The position of a scene given by name or by path."""
        if entry in self.names:
            return self.names.index(entry)
        if isinstance(entry, (str, os.PathLike)):
            target = os.path.abspath(os.fspath(entry))
            for i, s in enumerate(self.scenes):
                if s.path and os.path.abspath(s.path) == target:
                    return i
        name = name or f"{self.prefix}split"
        raise ValueError(f"`{name}`: no scene {entry!r}. Scenes: {self.names}")

    def split(self, lists, name=None):
        """`{"train", "val", "test"}` scene indices of a split by scene lists.

        Args:
            lists: `{"val": [...], "test": [...], "train": [...]}` of scene names or paths;
                `train` defaults to every scene in neither of the others.
            name: the argument's name in messages. Defaults to `"<prefix>split"`.
        """
        name = name or f"{self.prefix}split"
        out, used = {}, {}
        for part in ("val", "test", "train"):
            entries = lists.get(part)
            if entries is None and part == "train":
                entries = [n for i, n in enumerate(self.names) if i not in used]
            out[part] = [self.index(e, f"{name}.{part}") for e in entries]
            for i in out[part]:
                if i in used:
                    raise ValueError(
                        f"`{name}`: scene {self.names[i]!r} is in both `{used[i]}` and `{part}`."
                    )
                used[i] = part
            if not out[part]:
                raise ValueError(f"`{name}.{part}` names no scene. Received: {lists!r}")
        return {part: out[part] for part in ("train", "val", "test")}

    def close(self):
        for s in self.scenes:
            s.close()


def open_scenes(spec, wavelengths=None, key=None, prefix=""):
    """Opens the scenes of a path, a list of paths or a folder (see `find_scenes`).

    Args:
        spec: a file, a folder, or a list of them; arrays (`(H, W, C)`) are taken as scenes
            too, named `scene<i>`.
        wavelengths: optional `(C,)` band centres in nm, overriding or filling the files'.
        key: the array's name in `.mat`, `.npz` and HDF5 files (default: the only 3-D one).
        prefix: prefix of argument names in error messages (`"data."` for a config).

    Returns:
        A `SceneCollection`; no pixel is read yet.
    """
    entries = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    scenes = []
    for i, entry in enumerate(entries):
        if isinstance(entry, np.ndarray):
            scenes.append(Scene(entry, name=f"scene{i}"))
            continue
        for name, path, _ in find_scenes(entry, f"{prefix}scene"):
            scenes.append(open_scene(path, name=name, key=key))
    return SceneCollection(scenes, wavelengths, prefix=prefix)


def region_statistics(scene, region=None, gram=False, block_bytes=64 * 1024**2):
    """Statistics of a scene's region, read in blocks of rows (bounded memory).

    Args:
        scene: a `Scene`.
        region: `(row_slice, col_slice)`. Defaults to the whole scene.
        gram: also return the `(C, C)` mean of `x x^T` over the pixels.
        block_bytes: at most this many bytes read at once (float32).

    Returns:
        dict: `max` (float), `power` (`(C,)` mean square per band), `gram` (or None),
        `pixels`.
    """
    h, w, c = scene.shape
    rows, cols = region if region is not None else (slice(0, h), slice(0, w))
    r0, r1 = _bounds(rows, h, "rows")
    c0, c1 = _bounds(cols, w, "cols")
    step = max(1, int(block_bytes // (4 * c * (c1 - c0))))
    peak, power = -math.inf, np.zeros(c)
    total = np.zeros((c, c)) if gram else None
    for start in range(r0, r1, step):
        block = scene.read((start, min(start + step, r1)), (c0, c1)).reshape(-1, c)
        peak = max(peak, float(block.max()))
        block = block.astype(np.float64)
        power += np.einsum("nc,nc->c", block, block)
        if gram:
            total += block.T @ block
    n = (r1 - r0) * (c1 - c0)
    return {
        "max": peak,
        "power": power / n,
        "gram": None if total is None else total / n,
        "pixels": n,
    }
