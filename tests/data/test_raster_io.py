"""Georeferenced reading and writing (keras_hsifusion.data.raster)."""

import os
import struct
import zlib

import h5py
import numpy as np
import pytest

from keras_hsifusion.data import raster

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

rasterio = pytest.importorskip("rasterio")

WL = np.array([450.0, 550.0, 650.0, 850.0, 1650.0])
NODATA_VALUE = -9999.0
# UTM zone 16N, 30 m pixels, north up
T30 = (30.0, 0.0, 500010.0, 0.0, -30.0, 4400020.0)
T10 = (10.0, 0.0, 500010.0, 0.0, -10.0, 4400020.0)


@pytest.fixture
def cube():
    x = np.random.default_rng(0).uniform(0, 1, (12, 10, 5)).astype("float32")
    x[3, 4, :] = -9999.0  # a nodata pixel
    return x


def _meta(**kw):
    return dict(
        crs="EPSG:32616",
        transform=T30,
        nodata=-9999.0,
        wavelengths=WL,
        band_names=["blue", "green", "red", "nir", "swir"],
        **kw,
    )


@pytest.mark.parametrize(
    "name,mat_version",
    [
        ("a.tif", "5"),
        ("a.hdr", "5"),
        ("a.h5", "5"),
        ("a.mat", "5"),
        ("a.mat", "7.3"),
        ("a.npz", "5"),
    ],
)
def test_round_trip_keeps_grid_nodata_and_wavelengths(tmp_path, cube, name, mat_version):
    path = tmp_path / name
    raster.write_raster(path, cube, mat_version=mat_version, **_meta())
    got = raster.read_raster(path)
    np.testing.assert_array_equal(got.array, cube)
    assert got.array.dtype == np.float32
    assert got.crs == "EPSG:32616"
    assert got.transform == pytest.approx(T30)
    assert got.nodata == -9999.0
    np.testing.assert_allclose(got.wavelengths, WL)
    if name.endswith((".tif", ".hdr", ".h5")):
        assert got.band_names == ["blue", "green", "red", "nir", "swir"]
    mask = got.valid_mask()
    assert mask.sum() == 12 * 10 - 1 and not mask[3, 4]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [name] + (["a.img"] if name.endswith(".hdr") else [])
    ), "temporary files left behind"


def test_npy_has_no_metadata(tmp_path, cube):
    raster.write_raster(tmp_path / "a.npy", cube)
    got = raster.read_raster(tmp_path / "a.npy")
    np.testing.assert_array_equal(got.array, cube)
    assert (got.crs, got.transform, got.nodata, got.wavelengths) == (None, None, None, None)


@pytest.mark.parametrize("name", ["a.tif", "a.h5", "a.npy", "a.hdr", "a.mat", "a.npz"])
def test_reading_some_bands(tmp_path, cube, name):
    # the preview of a large output reads three bands (from disk for tif, hdr, h5, npy)
    meta = {} if name.endswith(".npy") else _meta()
    raster.write_raster(tmp_path / name, cube, **meta)
    part = raster.read_raster(tmp_path / name, bands=[3, 0, 3])
    np.testing.assert_array_equal(part.array, cube[..., [3, 0, 3]])
    if meta:
        np.testing.assert_allclose(part.wavelengths, WL[[3, 0, 3]])
        assert part.transform == pytest.approx(T30) and part.nodata == NODATA_VALUE


def test_geotiff_as_gdal_sees_it(tmp_path, cube):
    path = tmp_path / "a.tif"
    raster.write_raster(path, cube, **{**_meta(), "band_names": None})
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32616
        assert tuple(src.transform)[:6] == T30
        assert src.nodata == -9999.0 and src.count == 5 and src.dtypes[0] == "float32"
        assert src.descriptions == (
            "450.00 nm",
            "550.00 nm",
            "650.00 nm",
            "850.00 nm",
            "1650.00 nm",
        )
        assert src.tags(4) == {"wavelength": "850", "wavelength_units": "nm"}
        assert src.tags(5, ns="IMAGERY") == {"CENTRAL_WAVELENGTH_UM": "1.65"}
    # A file of another tool: only GDAL's IMAGERY domain; and one without any georeferencing.
    other = tmp_path / "other.tif"
    counts = (cube.clip(0, 1) * 1000).astype("uint16")
    with rasterio.open(
        other,
        "w",
        driver="GTiff",
        width=10,
        height=12,
        count=5,
        dtype="uint16",
        crs="EPSG:4326",
        transform=rasterio.Affine(1e-4, 0, -86.9, 0, -1e-4, 40.5),
    ) as dst:
        dst.write(np.moveaxis(counts, -1, 0))
        for i, w in enumerate(WL, start=1):
            dst.update_tags(i, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(w / 1000))
    got = raster.read_raster(other)
    np.testing.assert_allclose(got.wavelengths, WL)
    assert got.crs == "EPSG:4326" and got.transform[2] == pytest.approx(-86.9)
    assert got.array.dtype == np.float32
    np.testing.assert_array_equal(got.array, counts)
    plain = tmp_path / "plain.tif"  # a TIFF without georeferencing
    pytest.importorskip("tifffile").imwrite(plain, np.ones((3, 4), "float32"))
    got = raster.read_raster(plain)
    assert got.transform is None and got.crs is None and got.shape == (3, 4, 1)
    part = raster.read_raster(path, bands=[3, 0])
    np.testing.assert_array_equal(part.array, cube[..., [3, 0]])
    np.testing.assert_allclose(part.wavelengths, [850.0, 450.0])


def test_envi_map_info_and_micrometres(tmp_path, cube):
    spectral = pytest.importorskip("spectral")
    hdr = tmp_path / "scene.hdr"
    meta = {
        "map info": "{UTM, 2.0, 3.0, 500040.0, 4399960.0, 30.0, 30.0, 16, North, WGS-84, "
        "units=Meters}",
        "wavelength": [str(w / 1000) for w in WL],
        "wavelength units": "Micrometers",
        "data ignore value": "-9999",
    }
    spectral.envi.save_image(str(hdr), cube, dtype=np.float32, metadata=meta, force=True)
    got = raster.read_raster(hdr)
    # reference pixel (2, 3) 1-based is at (500040, 4399960): the corner of pixel (0, 0)
    # lies one pixel west and two north of it
    assert got.transform == pytest.approx((30.0, 0.0, 500010.0, 0.0, -30.0, 4400020.0))
    assert got.crs == "EPSG:32616" and got.nodata == -9999.0
    np.testing.assert_allclose(got.wavelengths, WL)
    np.testing.assert_array_equal(got.array, cube)
    # and what we write, spectral reads
    raster.write_raster(tmp_path / "out.hdr", got)
    img = spectral.envi.open(str(tmp_path / "out.hdr"))
    assert img.metadata["map info"][:7] == ["UTM", "1", "1", "500010", "4400020", "30", "30"]
    assert img.metadata["wavelength units"] == "Nanometers"


def test_matlab_v73_output_is_matlab_shaped(tmp_path, cube):
    path = tmp_path / "a.mat"
    raster.write_cube(path, cube, wavelengths=WL, key="hsi", mat_version="7.3")
    with open(path, "rb") as f:
        assert f.read(19) == b"MATLAB 7.3 MAT-file"
    with h5py.File(path, "r") as f:
        assert f["hsi"].shape == (5, 10, 12)  # column-major (C, W, H)
        assert f["hsi"].attrs["MATLAB_class"] == b"single"
    got, wl = raster.read_cube(path)
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_array_equal(wl, WL)
    with pytest.raises(ValueError, match="mat_version"):
        raster.write_cube(tmp_path / "b.mat", cube, mat_version="6")


@pytest.mark.parametrize("name", ["w.tif", "w.h5", "w.npy", "w.hdr", "w.mat", "w.npz"])
def test_writer_tile_by_tile_is_atomic(tmp_path, cube, name):
    if name.endswith(".hdr"):
        pytest.importorskip("spectral")
    path = tmp_path / name
    writer = raster.open_writer(path, cube.shape, **_meta(), mat_version="7.3")
    assert writer.shape == (12, 10, 5)
    for r0 in range(0, 12, 5):
        for c0 in range(0, 10, 4):
            writer[r0 : r0 + 5, c0 : c0 + 4, :] = cube[r0 : r0 + 5, c0 : c0 + 4]
    np.testing.assert_array_equal(writer[2:7, 3:9, :], cube[2:7, 3:9])
    assert not path.exists(), "the final name appears only on close()"
    writer.close()
    np.testing.assert_array_equal(raster.read_raster(path).array, cube)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    # an error inside the block leaves the previous file as it was and no temporary file
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="interrupted"):
        with raster.open_writer(path, cube.shape, **_meta()) as w:
            w[:6, :, :] = 0.0
            raise RuntimeError("interrupted")
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_writer_errors(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        raster.open_writer(tmp_path / "a.xyz", (2, 2, 1))
    with pytest.raises(ValueError, match="wavelengths"):
        raster.open_writer(tmp_path / "a.h5", (2, 2, 3), wavelengths=[1, 2])
    with pytest.raises(ValueError, match="transform"):
        raster.open_writer(tmp_path / "a.h5", (2, 2, 1), transform=(1, 0, 0))
    with pytest.raises(FileNotFoundError, match="folder"):
        raster.open_writer(tmp_path / "missing" / "a.h5", (2, 2, 1))
    with raster.open_writer(tmp_path / "a.h5", (2, 2, 1)) as w:
        with pytest.raises(TypeError, match=r"writer\[r0:r1"):
            w[[0, 1], :, :] = 1.0
        w[...] = 1.0
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def _pair(msi_transform=T10, msi_crs="EPSG:32616", msi_shape=(36, 30, 4)):
    hsi = raster.Raster(
        np.zeros((12, 10, 5), "float32"), crs="EPSG:32616", transform=T30, path="lr.tif"
    )
    msi = raster.Raster(
        np.zeros(msi_shape, "float32"), crs=msi_crs, transform=msi_transform, path="hr.tif"
    )
    return hsi, msi


def test_footprints():
    assert raster.check_footprints(*_pair()) == 3
    assert raster.check_footprints(*_pair(), scale=3) == 3
    cases = [
        (dict(msi_crs="EPSG:32617"), "different CRS"),
        (
            dict(msi_transform=(10.0, 0, 500025.0, 0, -10.0, 4400020.0)),
            r"origins differ by \(-15, 0\)",
        ),
        (dict(msi_transform=(12.0, 0, 500010.0, 0, -12.0, 4400020.0)), "not an integer ratio"),
        (dict(msi_transform=(10.0, 0, 500010.0, 0, 10.0, 4400020.0)), "axis direction"),
        (dict(msi_shape=(36, 28, 4)), "should be 36x30"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            raster.check_footprints(*_pair(**kwargs))
        message = str(info.value)
        assert "lr.tif" in message and "hr.tif" in message and "\n" not in message
    with pytest.raises(ValueError, match="scale`=4"):
        raster.check_footprints(*_pair(), scale=4)
    # without a transform on one side only the sizes count
    hsi, msi = _pair()
    msi.transform = None
    assert raster.check_footprints(hsi, msi) == 3
    msi.array = np.zeros((36, 31, 4), "float32")
    with pytest.raises(ValueError, match="integer multiple"):
        raster.check_footprints(hsi, msi)


def test_raster_checks_and_masks():
    x = np.ones((2, 3, 2), "float32")
    x[0, 0, 1] = 0.0
    x[1, 2, 0] = np.nan
    r = raster.Raster(x, nodata=0.0)
    np.testing.assert_array_equal(r.valid_mask(), [[False, True, True], [True, True, False]])
    assert raster.Raster(x).valid_mask().sum() == 5  # NaN is always nodata
    with pytest.raises(ValueError, match="wavelengths"):
        raster.Raster(x, wavelengths=[1.0])
    with pytest.raises(ValueError, match="singular"):
        raster.Raster(x, transform=(0, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="extension"):
        raster.read_raster("scene.xyz")
    with pytest.raises(FileNotFoundError):
        raster.read_raster("missing.tif")


def test_false_colour_and_png(tmp_path):
    assert raster.false_colour_bands(np.linspace(400, 2500, 200), 200)[1].startswith("CIR")
    bands, name = raster.false_colour_bands(np.array([450.0, 550.0, 650.0, 700.0]), 4)
    assert bands == [2, 1, 0] and name.startswith("RGB")
    assert raster.false_colour_bands(None, 8)[0] == [6, 4, 2]
    rgb = np.stack([*np.meshgrid(np.arange(5.0), np.arange(4.0)), np.zeros((4, 5))], -1)
    img = raster.false_colour(rgb, valid=np.ones((4, 5), bool))
    assert img.dtype == np.uint8 and img[0, 0, 0] == 0 and img[0, -1, 0] == 255
    raster.write_png(tmp_path / "a.png", img)
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (5, 4)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    raw = np.frombuffer(zlib.decompress(data[start : start + length]), np.uint8)
    np.testing.assert_array_equal(raw.reshape(4, 16)[:, 1:].reshape(4, 5, 3), img)
