"""`khf.fuse_files`: the library behind `khf fuse`, on the small georeferenced Indian Pines
pair of tests/test_cli.py (32 x 32 HR pixels, one nodata pixel in each input)."""

import os
import warnings

import numpy as np
import pytest
from test_cli import CRS, HR_HOLE, HR_T, LR_T, NODATA, _no_temporary_files, _write_pair

import keras_hsifusion as khf
from keras_hsifusion import metrics
from keras_hsifusion.cli import main
from keras_hsifusion.data import raster

rasterio = pytest.importorskip("rasterio")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene_pair")
    return folder, _write_pair(folder, 32, holes=True)


def _geotiff(path):
    with rasterio.open(path) as src:
        return {
            "pixels": np.moveaxis(src.read(), 0, -1),
            "crs": src.crs.to_string(),
            "transform": tuple(src.transform)[:6],
            "nodata": src.nodata,
            "wavelengths": [float(src.tags(i)["wavelength"]) for i in range(1, src.count + 1)],
            "descriptions": src.descriptions,
        }


def test_fuse_files_writes_the_same_file_as_khf_fuse(pair, tmp_path):
    folder, (lr, msi, hr, wl) = pair
    lr_path, msi_path = str(folder / "lr_hsi.tif"), str(folder / "hr_msi.tif")
    cli_out, api_out = tmp_path / "cli.tif", tmp_path / "api.tif"
    assert main(["fuse", lr_path, msi_path, "-m", "sfim", "-o", str(cli_out), "--quiet"]) == 0
    lines = []
    result = khf.fuse_files(lr_path, msi_path, str(api_out), "sfim", log=lines.append)
    assert result["shape"] == (32, 32, 200) and result["scale"] == 4
    assert result["nodata_pixels"] == 17 and result["metrics"] is None
    assert any("scale 4" in line for line in lines)
    a, b = _geotiff(cli_out), _geotiff(api_out)
    np.testing.assert_array_equal(a.pop("pixels"), b.pop("pixels"))
    assert a == b
    assert b["crs"] == CRS and b["transform"] == HR_T and b["nodata"] == NODATA
    np.testing.assert_allclose(b["wavelengths"], wl, rtol=1e-6)
    assert _no_temporary_files(tmp_path)


def test_fuse_files_scores_against_a_reference_and_writes_a_preview(pair, tmp_path):
    folder, (lr, msi, hr, wl) = pair
    out, png = tmp_path / "fused.h5", tmp_path / "fused.png"
    result = khf.fuse_files(
        folder / "lr_hsi.tif",
        folder / "hr_msi.tif",
        out,
        "bicubic",
        preview=png,
        reference=folder / "reference.tif",
    )
    fused = raster.read_raster(out)
    assert fused.crs == CRS and fused.transform == HR_T
    valid = fused.valid_mask()
    assert int((~valid).sum()) == 17
    want = metrics.psnr(hr[valid][None].astype(np.float64), fused.array[valid][None])
    assert result["metrics"]["psnr"] == pytest.approx(want, rel=1e-9)
    assert "ssim" not in result["metrics"] and 20 < result["metrics"]["psnr"] < 40
    assert png.read_bytes()[:4] == b"\x89PNG" and result["preview_bands"].startswith("CIR")


def test_every_argument_is_checked_before_the_inputs_are_read(tmp_path):
    # the inputs do not exist: each error below proves nothing was read first
    lr, msi, out = str(tmp_path / "no_lr.tif"), str(tmp_path / "no_msi.tif"), tmp_path / "o.tif"
    cases = [
        (dict(method="no_such_preset"), ValueError, "no_such_preset"),
        (dict(output=tmp_path / "o.xyz"), ValueError, "Unsupported output extension"),
        (dict(output=tmp_path / "missing" / "o.tif"), FileNotFoundError, "does not exist"),
        (dict(tile=0), ValueError, "`tile` must be an integer >= 1. Received: tile=0"),
        (dict(overlap=-1), ValueError, "overlap=-1"),
        (dict(batch_size=0), ValueError, "batch_size=0"),
        (dict(scale=0), ValueError, "scale=0"),
        (dict(sensor="no_sensor"), ValueError, "no_sensor"),
        (dict(psf_fwhm=-2.0), ValueError, "psf_fwhm=-2.0"),
        (dict(preview=tmp_path / "p.jpg"), ValueError, "must be a .png"),
        (dict(method=str(tmp_path / "m.keras")), FileNotFoundError, "m.keras"),
    ]
    for changes, error, match in cases:
        kwargs = {"output": out, "method": "bicubic", **changes}
        with pytest.raises(error, match=match):
            khf.fuse_files(lr, msi, kwargs.pop("output"), kwargs.pop("method"), **kwargs)
    with pytest.raises(FileNotFoundError, match="no_lr.tif"):  # all arguments are fine
        khf.fuse_files(lr, msi, out, "bicubic")
    (tmp_path / "exists.tif").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="overwrite"):
        khf.fuse_files(lr, msi, tmp_path / "exists.tif", "bicubic")
    assert sorted(os.listdir(tmp_path)) == ["exists.tif"]  # no temporary file


def test_swapped_inputs_are_named_as_such(pair, tmp_path):
    folder, (lr, msi, _, wl) = pair
    with pytest.raises(ValueError, match="the inputs look swapped") as info:
        khf.fuse_files(folder / "hr_msi.tif", folder / "lr_hsi.tif", tmp_path / "o.h5", "gsa")
    assert "hr_msi.tif" in str(info.value) and "lr_hsi.tif" in str(info.value)
    # without a map grid: the pixel counts tell
    np.save(tmp_path / "lr.npy", lr)
    np.save(tmp_path / "msi.npy", msi)
    with pytest.raises(ValueError, match="the inputs look swapped.*msi.npy.*lr.npy"):
        khf.fuse_files(tmp_path / "msi.npy", tmp_path / "lr.npy", tmp_path / "o.npy", "gsa")
    assert not (tmp_path / "o.npy").exists() and not (tmp_path / "o.h5").exists()


def test_a_preset_warns_when_the_wavelength_check_cannot_run(tmp_path):
    # an LR-HSI without wavelengths (and, to stop before any tile, of another band count)
    rng = np.random.default_rng(0)
    raster.write_raster(tmp_path / "lr.h5", rng.random((8, 8, 10)), crs=CRS, transform=LR_T)
    raster.write_raster(tmp_path / "msi.h5", rng.random((32, 32, 4)), crs=CRS, transform=HR_T)
    preset = "hssdct_indianpines_s2_x4"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="hsi_bands=200"):
            khf.fuse_files(tmp_path / "lr.h5", tmp_path / "msi.h5", tmp_path / "o.h5", preset)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("has no wavelengths" in m and preset in m for m in messages), messages
    assert not (tmp_path / "o.h5").exists() and _no_temporary_files(tmp_path)


def test_nodata_pixels_stay_nodata(pair, tmp_path):
    folder, _ = pair
    out = tmp_path / "fused.npz"
    khf.fuse_files(folder / "lr_hsi.tif", folder / "hr_msi.tif", out, "bicubic")
    fused = raster.read_raster(out)
    assert fused.nodata == NODATA and np.all(fused.array[HR_HOLE] == NODATA)
    assert np.all(fused.array[8:12, 12:16] == NODATA)  # under the LR-HSI hole (2, 3)
    assert np.all(fused.array[0:8] != NODATA)
