"""`khf.adapt` and `khf adapt`: training on one real pair without a reference.

A tiny pair from Indian Pines (a 96x96 HR crop simulated x4 with the Sentinel-2A 10 m MSI,
every 20th HSI band) and the tiny HSSDCT of `tests/harness.py`, trained for a few steps.
"""

import json

import keras
import numpy as np
import pytest
from harness import HSSDCT_CONFIG_TINY, MSST_CONFIG_TINY, assert_close

import keras_hsifusion as khf
from keras_hsifusion import data, metrics
from keras_hsifusion.cli import main
from keras_hsifusion.data import raster
from keras_hsifusion.training import read_state

# The tiny HSSDCT without the global skip of the shipped preset, and a few steps. Both
# training tests use the same model and first stage, so that under JAX the second one finds
# the compiled programs of the first in the persistent compilation cache of `make test`.
TINY = {k: v for k, v in HSSDCT_CONFIG_TINY.items() if k != "class"} | {"global_skip": None}
# The command line test adapts the tiny MSST-Net: the command's own work (files, card, refusal,
# resume, fuse) does not depend on the model, and it costs a third of the tiny HSSDCT's
# training under TensorFlow's eager steps and XLA's compilation.
MSST_TINY = {k: v for k, v in MSST_CONFIG_TINY.items() if k != "class"}
FAST = dict(steps=4, steps_per_epoch=2, patch_size=8, batch_size=2, learning_rate=1e-3)
PRESET = "hssdct_indianpines_s2_x4"
# UTM zone 16N: LR-HSI pixels of 40 m, HR-MSI pixels of 10 m, same corner (as tests/test_cli).
CRS = "EPSG:32616"
HR_T = (10.0, 0.0, 507000.0, 0.0, -10.0, 4484000.0)


def _lr_transform(scale):
    return (10.0 * scale, 0.0, 507000.0, 0.0, -10.0 * scale, 4484000.0)


def _simulate(size, scale, band_step):
    cube, wl = data.indian_pines()
    hr = cube[:size, :size]
    lr, msi = data.degrade(hr, scale, data.spectral_response("sentinel2a-10m", wl))
    return lr[..., ::band_step], msi, wl[::band_step]


@pytest.fixture(scope="module")
def pair():
    return _simulate(96, 4, 20)


@pytest.fixture(scope="module")
def files(pair, tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapt_pair")
    lr, msi, wl = pair
    raster.write_raster(
        folder / "lr_hsi.tif", lr, crs=CRS, transform=_lr_transform(4), wavelengths=wl
    )
    raster.write_raster(
        folder / "hr_msi.tif", msi, crs=CRS, transform=HR_T, band_names=["B2", "B3", "B4", "B8"]
    )
    return folder


def test_adapt_from_scratch_writes_a_loadable_preset(pair, tmp_path):
    lr, msi, wl = pair
    out = tmp_path / "adapted"
    messages = []
    model = khf.adapt(
        lr,
        msi,
        "HSSDCT",
        out,
        model_kwargs=TINY,
        wavelengths=wl,
        full_resolution_steps=2,
        verbose=0,
        log=messages.append,
        **FAST,
    )
    card = json.loads((out / "preset.json").read_text())
    assert model.preset_card == card and card["class"] == "HSSDCT"
    assert (card["scale"], card["hsi_bands"], card["msi_bands"]) == (4, 10, 4)
    training = card["training"]
    assert training["method"] == "keras_hsifusion.adapt"
    assert "No reference was used" in training["description"] == card["description"]
    assert training["start"]["start"] == "HSSDCT from scratch"
    # a class name starts from the arguments of its shipped preset, updated by model_kwargs
    shipped = khf.presets.load_card(PRESET)["config"]
    assert training["start"]["arguments"] == {
        **{k: v for k, v in shipped.items() if k in ("hier_win_ratios", "final_window_size")},
        **TINY,
    }
    assert (
        training["full_resolution"]["steps"] == 2 and training["reduced_resolution"]["steps"] == 4
    )
    assert training["selected"]["stage"] in ("reduced_resolution", "full_resolution")
    assert training["psf"]["fwhm"] == 4.0 and "estimated" in training["srf"]["source"]
    assert np.shape(training["srf"]["matrix"]) == (10, 4)
    divisor = float(lr.max())
    assert card["normalisation"]["divisor"] == pytest.approx(divisor)
    np.testing.assert_allclose(card["hsi_wavelengths_nm"], wl)
    # reduced-resolution validation metrics, next to classical methods on the same strip
    val = card["metrics"]["reduced_resolution_validation"]
    assert {"model", "bicubic", "poly_detail_injection"} <= set(val)
    assert all(np.isfinite(v["psnr"]) and v["sam"] >= 0 for v in val.values())
    assert val["poly_detail_injection"]["psnr"] > val["bicubic"]["psnr"] > 25
    # full-resolution no-reference indices
    full = card["metrics"]["full_resolution"]
    assert 0.0 <= full["qnr"] <= 1.0
    assert full["qnr"] == pytest.approx((1 - full["d_lambda"]) * (1 - full["d_s"]))
    # the reduced-resolution loss decreases
    history = read_state(out / "training" / "reduced_resolution")["history"]
    assert len(history) == 2 and history[-1]["loss"] < history[0]["loss"]
    assert any(m.startswith("=== reduced resolution") for m in messages)
    assert any(m.startswith("=== full resolution") for m in messages)

    # the folder loads as a preset and as a plain .keras file; fusing with the folder
    # applies the card's divisor and undoes it
    assert type(khf.from_preset(str(out))).__name__ == "HSSDCT"
    plain = keras.models.load_model(out / "model.keras")
    fused = khf.fuse(lr, msi, str(out))
    assert fused.shape == (96, 96, 10)
    assert_close(fused, khf.fuse(lr / divisor, msi / divisor, plain) * divisor, rtol=1e-4)
    # the card's QNR is `khf.metrics.qnr` of that fusion
    assert metrics.qnr(fused / divisor, lr / divisor, msi / divisor, scale=4) == pytest.approx(
        full["qnr"], rel=1e-3
    )


def test_cli_adapt_geotiff_then_fuse(pair, files, tmp_path, capsys):
    lr, msi, wl = pair
    out = tmp_path / "adapted"
    args = [
        "adapt",
        str(files / "lr_hsi.tif"),
        str(files / "hr_msi.tif"),
        "-m",
        "MSSTNet",
        "--model-args",
        json.dumps(MSST_TINY),
        "-o",
        str(out),
        "--steps",
        "4",
        "--steps-per-epoch",
        "2",
        "--full-resolution-steps",
        "0",
        "--patch-size",
        "8",
        "--batch-size",
        "2",
        "--learning-rate",
        "1e-3",
        "--verbose",
        "0",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "reduced-resolution validation strip" in printed and "QNR" in printed
    assert f"-m {out}" in printed
    card = khf.presets.load_card(str(out))
    assert card["training"]["full_resolution"] is None
    assert card["data"]["lr_hsi"].endswith("lr_hsi.tif") and card["data"]["crs"] == CRS
    assert card["msi_band_names"] == ["B2", "B3", "B4", "B8"]
    assert card["class"] == "MSSTNet" and card["config"]["n_feats"] == MSST_TINY["n_feats"]
    # an existing run is refused; --resume finds both stages done and writes the card again
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "--resume" not in err[0]
    assert main([*args, "--resume"]) == 0
    assert "already trained" in capsys.readouterr().out

    fused_path = tmp_path / "fused.tif"
    fuse = ["fuse", str(files / "lr_hsi.tif"), str(files / "hr_msi.tif"), "-m", str(out)]
    assert main([*fuse, "-o", str(fused_path), "--quiet"]) == 0
    fused = raster.read_raster(fused_path)
    assert fused.shape == (96, 96, 10) and fused.transform == HR_T and fused.crs == CRS
    np.testing.assert_allclose(fused.wavelengths, wl, rtol=1e-6)
    # what the library gives with the folder (the card's divisor applied and undone)
    assert_close(fused.array, khf.fuse(lr, msi, str(out)), rtol=1e-4)


# --------------------------------------------------------------------------- bad input


def _bad_case(case, files, tmp_path):
    """`(lr path, msi path, model, texts the error must contain)` of one kind of bad input."""
    lr, msi = str(files / "lr_hsi.tif"), str(files / "hr_msi.tif")
    if case == "footprints":
        bad = tmp_path / "shifted_msi.tif"
        shifted = (10.0, 0.0, 507020.0, 0.0, -10.0, 4484000.0)
        raster.write_raster(bad, raster.read_raster(msi).array, crs=CRS, transform=shifted)
        return lr, str(bad), "HSSDCT", ["Footprints disagree", "shifted_msi.tif", "(-20, 0)"]
    if case == "preset_bands":
        return lr, msi, PRESET, [PRESET, "lr_hsi.tif", "hsi_bands=200", "10 and 4"]
    if case in ("preset_scale", "class_scale"):
        scale, step = (2, 1) if case == "preset_scale" else (3, 20)
        small_lr, small_msi, wl = _simulate(24 if scale == 3 else 16, scale, step)
        path = tmp_path / f"lr_x{scale}.tif"
        raster.write_raster(path, small_lr, crs=CRS, transform=_lr_transform(scale), wavelengths=wl)
        msi_path = tmp_path / f"msi_x{scale}.tif"
        raster.write_raster(msi_path, small_msi, crs=CRS, transform=HR_T)
        if case == "preset_scale":
            return str(path), str(msi_path), PRESET, [PRESET, "lr_x2.tif", "scale 2", "scale 4"]
        expected = ["HSSDCT cannot be built", "lr_x3.tif", "scale=3"]
        return str(path), str(msi_path), "HSSDCT", expected
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a GeoTIFF at all")
    return str(broken), msi, "HSSDCT", ["Could not read", "broken.tif"]


@pytest.mark.parametrize(
    "case", ["footprints", "preset_bands", "preset_scale", "class_scale", "unreadable"]
)
def test_bad_input_is_one_line_naming_the_file_and_value(files, tmp_path, capsys, case):
    lr, msi, model, expected = _bad_case(case, files, tmp_path)
    out = tmp_path / "adapted"
    assert main(["adapt", lr, msi, "-m", model, "-o", str(out), "--steps", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("khf adapt: error: "), err
    for text in expected:
        assert text in err[0], (text, err[0])
    assert "Traceback" not in err[0] and not out.exists()
    with pytest.raises(ValueError) as info:
        khf.adapt(lr, msi, model, out, steps=1)
    assert expected[0] in str(info.value) and expected[1] in str(info.value)


def test_bad_arguments_name_the_value(pair, files, tmp_path, capsys):
    lr, msi, _ = pair
    with pytest.raises(ValueError, match="Received: model='NoSuchModel'"):
        khf.adapt(lr, msi, "NoSuchModel", tmp_path / "a")
    # gc=16 is the shipped preset's, not the class default (32)
    with pytest.raises(ValueError, match="HSSDCT cannot be built .* nf=30, gc=16"):
        khf.adapt(lr, msi, "HSSDCT", tmp_path / "a", model_kwargs={"nf": 30})
    with pytest.raises(ValueError, match="Received shape"):
        khf.adapt(lr, msi, "HSSDCT", tmp_path / "a", srf=np.ones((3, 4)))
    with pytest.raises(ValueError, match="needs the band centres"):
        khf.adapt(lr, msi, "HSSDCT", tmp_path / "a", srf="landsat8-oli")
    # a model object or .keras file must fit the pair too
    other = khf.applications.HSSDCT(hsi_bands=8, msi_bands=3, nf=32, gc=16, window_size=2)
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="needs hsi_bands=8 and msi_bands=3, .* has 10 and 4"):
        khf.adapt(lr, msi, str(tmp_path / "other.keras"), tmp_path / "a")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="occupied"):
        khf.adapt(lr, msi, "HSSDCT", occupied)
    argv = ["adapt", str(files / "lr_hsi.tif"), str(files / "hr_msi.tif"), "-m", "HSSDCT"]
    assert main([*argv, "-o", str(occupied), "--model-args", "{nf: 32}"]) == 1
    assert "--model-args is not JSON" in capsys.readouterr().err
    assert main([*argv, "-o", str(tmp_path / "b"), "--psf-fwhm", "wide"]) == 1
    assert "Received: wide" in capsys.readouterr().err
    assert (occupied / "notes.txt").read_text() == "mine"
