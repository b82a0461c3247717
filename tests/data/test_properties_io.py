"""Property tests (hypothesis) of the readers/writers and of the tiling: every format gives
back the cube (as float32) with its shape, wavelengths (in any order) and map grid, and any
scene size, tile, overlap and alignment reassembles an identity "model" exactly. Examples
are derandomised (reproducible in CI) and small, so each test runs in seconds."""

import contextlib
import importlib.util
import os
import tempfile
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_hsifusion as khf
from keras_hsifusion import baselines
from keras_hsifusion.data import raster
from keras_hsifusion.inference.tiling import plan_tiles

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None)
HAS = {m: importlib.util.find_spec(m) is not None for m in ("rasterio", "spectral", "tifffile")}
# (extension, mat_version) of the raster formats that keep metadata, where installed.
RASTER_FORMATS = [(".h5", "5"), (".npz", "5"), (".mat", "5"), (".mat", "7.3")]
RASTER_FORMATS += [(".tif", "5")] * HAS["rasterio"] + [(".hdr", "5")] * HAS["spectral"]
IO_FORMATS = [".npy", ".npz", ".h5", ".mat5", ".mat73"]
IO_FORMATS += [".hdr"] * HAS["spectral"] + [".tif"] * HAS["tifffile"]
IO_KEEPS_WAVELENGTHS = {".npz", ".h5", ".mat5", ".mat73", ".hdr"}
DTYPES = ["float32", "float64", "uint16", "int16", "uint8"]


@contextlib.contextmanager
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield name


@st.composite
def cubes(draw, max_side=6, max_bands=5):
    """A `(H, W, C)` cube of a drawn dtype (values exact in float32) and C wavelengths in nm
    (two decimals, 300-2600 nm, in any order: AVIRIS' are not increasing)."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    c = draw(st.integers(1, max_bands))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":
        cube = (rng.uniform(-1, 1, (h, w, c)) * 10.0 ** draw(st.integers(-3, 4))).astype(np.float32)
        cube = cube.astype(dtype)
    else:
        info = np.iinfo(dtype)
        cube = rng.integers(info.min, int(info.max) + 1, (h, w, c)).astype(dtype)
    centi = draw(st.lists(st.integers(30_000, 260_000), min_size=c, max_size=c, unique=True))
    return cube, np.array(centi) / 100.0


@SETTINGS
@given(
    data=cubes(),
    fmt=st.sampled_from(RASTER_FORMATS),
    georef=st.booleans(),
    pixel=st.integers(1, 100),
    nodata=st.sampled_from([None, -9999.0, 0.0]),
)
def test_raster_round_trip_keeps_cube_wavelengths_and_grid(data, fmt, georef, pixel, nodata):
    cube, wl = data
    ext, mat_version = fmt
    transform = (float(pixel), 0.0, 500000.0, 0.0, -float(pixel), 4400000.0)
    meta = dict(wavelengths=wl, nodata=nodata)
    if georef:
        meta.update(crs="EPSG:32616", transform=transform)
    with folder() as tmp:
        path = os.path.join(tmp, "cube" + ext)
        raster.write_raster(path, cube, mat_version=mat_version, **meta)
        got = raster.read_raster(path)
        assert not [p for p in os.listdir(tmp) if p.startswith(".tmp-")]
    assert got.array.dtype == np.float32 and got.shape == cube.shape
    np.testing.assert_array_equal(got.array, cube.astype(np.float32))
    np.testing.assert_allclose(got.wavelengths, wl, rtol=1e-6)
    assert got.nodata == nodata
    if georef:
        assert got.crs == "EPSG:32616"
        np.testing.assert_allclose(got.transform, transform)
    else:
        assert got.transform is None


@SETTINGS
@given(data=cubes(), fmt=st.sampled_from(IO_FORMATS), with_wl=st.booleans())
def test_cube_round_trip_keeps_shape_values_and_wavelengths(data, fmt, with_wl):
    cube, wl = data
    keeps = fmt in IO_KEEPS_WAVELENGTHS
    wl = wl if with_wl and keeps else None
    ext, mat_version = (fmt, "5")
    if fmt.startswith(".mat"):
        ext, mat_version = ".mat", {".mat5": "5", ".mat73": "7.3"}[fmt]
    with folder() as tmp:
        path = os.path.join(tmp, "cube" + ext)
        raster.write_cube(path, cube, wavelengths=wl, mat_version=mat_version)
        got, got_wl = raster.read_cube(path)
    assert got.dtype == np.float32 and got.shape == cube.shape
    np.testing.assert_array_equal(got, cube.astype(np.float32))
    if wl is None:
        assert got_wl is None
    else:
        np.testing.assert_allclose(got_wl, wl, rtol=1e-6)


@st.composite
def tilings(draw):
    """A scene size, a scale, an alignment (a multiple of the scale), a tile and an overlap
    that leaves a stride of at least the alignment."""
    scale = draw(st.sampled_from([1, 2, 4]))
    multiple = scale * draw(st.sampled_from([1, 2, 4]))
    tile = multiple * draw(st.integers(1, 6))
    overlap = draw(st.integers(0, tile - multiple))
    size = (draw(st.integers(1, 60)) * scale, draw(st.integers(1, 60)) * scale)
    return size, scale, multiple, tile, overlap


@SETTINGS
@given(case=tilings(), seed=st.integers(0, 2**16))
def test_tiles_cover_align_and_reassemble_an_identity_exactly(case, seed):
    size, scale, multiple, tile, overlap = case
    plan = plan_tiles(size, scale, tile, overlap, multiple)
    x = np.random.default_rng(seed).uniform(-1, 1, (*size, 3)).astype(np.float32)
    out, count = np.zeros_like(x), np.zeros(size, int)
    for i, (r0, r1) in enumerate(plan.rows):
        for j, (c0, c1) in enumerate(plan.cols):
            out[r0:r1, c0:c1] += plan.weight(i, j) * x[r0:r1, c0:c1]  # the identity, weighted
            count[r0:r1, c0:c1] += 1
    assert count.min() >= 1  # every pixel is covered
    np.testing.assert_allclose(out, x, rtol=0, atol=1e-6)
    for axis, intervals in enumerate((plan.rows, plan.cols)):
        assert intervals[0][0] == 0 and intervals[-1][1] == size[axis]
        for start, stop in intervals:
            assert start % multiple == 0  # aligned to the windows / patches
            assert stop - start <= tile + multiple - 1
        for (_, stop), (start, _) in zip(intervals, intervals[1:]):
            assert stop - start >= overlap  # neighbours overlap by at least `overlap`


def nearest(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """An identity "model" at the HR size: nearest upsampling of the LR-HSI."""
    lr = np.asarray(lr_hsi, np.float32)
    return np.repeat(np.repeat(lr, scale, axis=-3), scale, axis=-2)


@SETTINGS
@given(case=tilings(), seed=st.integers(0, 2**16))
def test_fuse_with_any_tiling_reassembles_an_identity_method(case, seed):
    (big_h, big_w), scale, _, tile, overlap = case
    tile = tile // scale * scale or scale  # classical methods align tiles to the scale only
    overlap = min(overlap, tile - scale)
    rng = np.random.default_rng(seed)
    lr = rng.uniform(0, 1, (big_h // scale, big_w // scale, 3)).astype(np.float32)
    hr = rng.uniform(0, 1, (big_h, big_w, 2)).astype(np.float32)
    with mock.patch.dict(baselines.METHODS, test_identity=nearest):
        fused = khf.fuse(lr, hr, "test_identity", scale=scale, tile=tile, overlap=overlap)
    assert fused.dtype == np.float32 and fused.shape == (big_h, big_w, 3)
    np.testing.assert_allclose(fused, nearest(lr, hr, scale), rtol=0, atol=1e-6)
