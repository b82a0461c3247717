"""Reliability of what users pass in: integer digital numbers and negative values through a
model call, `model.fuse`, `khf.fuse`, a preset and the classical methods; images smaller
than a window or patch, or empty; wavelengths that do not match the bands or the preset;
scenes too large for memory (refused before allocating, with the estimate). The cases and
their rows are in docs/reliability.md."""

import os

import keras
import numpy as np
import pytest
from harness import MSST_NET_TINY, assert_close, run_model

import keras_hsifusion as khf
from keras_hsifusion import baselines, presets
from keras_hsifusion.cli import main
from keras_hsifusion.data import raster

SCALE = 4
# AVIRIS-like band centres: two spectrometers overlap, so they are not increasing.
NON_MONOTONIC_NM = [676.57, 686.53, 696.5, 686.91, 696.55, 706.19]


def digital_numbers(h, w, bands, msi_bands=3, seed=0, high=9000):
    """uint16 LR-HSI and HR-MSI digital numbers (the raw units of many instruments)."""
    rng = np.random.default_rng(seed)
    lr = rng.integers(100, high, (h, w, bands)).astype(np.uint16)
    hr = rng.integers(100, high, (SCALE * h, SCALE * w, msi_bands)).astype(np.uint16)
    return lr, hr


def tiny_model():
    """A tiny MSST-Net: patches of 2, 4 and 8 HR pixels, 4 HSI bands, 3 MSI bands."""
    return khf.applications.MSSTNet(**MSST_NET_TINY)


# --- model calls -----------------------------------------------------------------------------


def test_integer_negative_and_tiny_inputs_to_a_model_call():
    # A 1 x 1 LR-HSI (4 x 4 HR): smaller than every MSST-Net patch (2, 4 and 8 HR pixels),
    # padded inside the model and cropped back (HSSDCT's windows: test_hssdct.py). Values of
    # a few hundred: a call computes on the values as given, and the models are trained on
    # inputs scaled to about [0, 1] (raw thousands can overflow float32 inside; `fuse`
    # refuses that output, see `test_fuse_refuses_non_finite_tiles_and_outputs`). One size,
    # two dtypes: two compilations under JAX.
    model = tiny_model()
    lr, hr = digital_numbers(1, 1, model.hsi_bands, high=500)
    lr, hr = lr[None], hr[None]
    as_float = run_model(model, {"lr_hsi": lr.astype(np.float32), "hr_msi": hr.astype("f4")})
    assert as_float.shape == (1, 4, 4, model.hsi_bands) and as_float.dtype == np.float32
    assert np.all(np.isfinite(as_float)) and np.ptp(as_float) > 0
    # integers are cast to the model's float32 input: the same numbers
    as_int = run_model(model, {"lr_hsi": lr, "hr_msi": hr})
    assert as_int.dtype == np.float32
    assert_close(as_int, as_float, rtol=1e-6, what="uint16 input")
    # negative values are computed as given: finite, and not the positive result
    neg = run_model(model, {"lr_hsi": -lr.astype(np.float32), "hr_msi": -hr.astype("f4")})
    assert neg.shape == as_float.shape and np.all(np.isfinite(neg))
    assert np.abs(neg - as_float).max() > 1e-3 * np.abs(as_float).max()


@pytest.mark.parametrize("empty", ["lr_hsi", "hr_msi"])
def test_empty_images_to_a_model_call(empty):
    model = tiny_model()
    inputs = {"lr_hsi": np.zeros((1, 2, 2, 4), "float32"), "hr_msi": np.zeros((1, 8, 8, 3), "f4")}
    inputs[empty] = np.zeros((1, 0, 0, inputs[empty].shape[-1]), "float32")
    with pytest.raises(ValueError, match=rf"`{empty}` is empty.*\(1, 0, 0, \d\)"):
        model(inputs)


# --- fuse: models, presets, classical methods -----------------------------------------------


def _save_tiny_preset(folder):
    model = tiny_model()
    model.save_to_preset(
        folder,
        normalisation={"input": "divide both inputs by the maximum of the LR-HSI"},
        hsi_wavelengths_nm=[450.0, 550.0, 650.0, 850.0],
    )
    return model


def test_integer_and_negative_inputs_to_model_fuse():
    model = tiny_model()
    lr, hr = digital_numbers(1, 1, 4, seed=1, high=500)  # one pass: smaller than a tile
    fused = model.fuse(lr, hr)
    assert fused.dtype == np.float32 and fused.shape == (4, 4, 4)
    np.testing.assert_array_equal(fused, model.fuse(lr.astype(np.float32), hr.astype("f4")))
    # no card: the values are fused as given, negative ones too
    neg = model.fuse(-lr.astype(np.float32), -hr.astype(np.float32))
    assert np.all(np.isfinite(neg)) and np.abs(neg - fused).max() > 0


def test_integer_and_negative_inputs_to_a_preset(tmp_path):
    folder = str(tmp_path / "tiny_preset")
    _save_tiny_preset(folder)
    lr, hr = digital_numbers(1, 1, 4, seed=2)
    fused = khf.fuse(lr, hr, folder)
    assert fused.dtype == np.float32 and fused.shape == (4, 4, 4)
    np.testing.assert_array_equal(fused, khf.fuse(lr.astype(np.float32), hr.astype("f4"), folder))
    # digital numbers in, digital numbers out: divided by max(lr_hsi), multiplied back
    peak = float(lr.max())
    unit = khf.fuse(lr / peak, hr / peak, folder)
    assert_close(fused, unit * peak, rtol=1e-5, what="preset normalisation of uint16 input")
    assert np.abs(fused).max() > 10  # in the units of the input, not [0, 1]
    # some negative values (noise under a dark surface): fused, in the input's units
    signed = lr.astype(np.float32) - 500.0
    assert np.all(np.isfinite(khf.fuse(signed, hr.astype(np.float32), folder)))
    # no positive value, or a NaN: the normalisation cannot be defined
    for bad, shown in [(-lr.astype(np.float32), f"{-float(lr.min())!r}"), (0 * lr, "0.0")]:
        with pytest.raises(ValueError, match=rf"max\(lr_hsi\)={shown}"):
            khf.fuse(bad, hr, folder)
    nan = lr.astype(np.float32)
    nan[0, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"positive and finite.*max\(lr_hsi\)=nan"):
        khf.fuse(nan, hr, folder)


def test_integer_and_negative_inputs_to_classical_methods():
    lr, hr = digital_numbers(6, 5, 7, seed=3)
    lr32, hr32 = lr.astype(np.float32), hr.astype(np.float32)
    for name in ("gsa", "bicubic"):
        fn = baselines.METHODS[name]
        out = fn(lr, hr, SCALE)
        assert out.dtype == np.float32 and out.shape == (24, 20, 7)
        np.testing.assert_array_equal(out, fn(lr32, hr32, SCALE))
        np.testing.assert_array_equal(khf.fuse(lr, hr, name), khf.fuse(lr32, hr32, name))
    # negative values are fused as given: bicubic is linear, GSA gives a finite result
    assert_close(baselines.bicubic(-lr32, hr32, SCALE), -baselines.bicubic(lr32, hr32, SCALE))
    assert np.all(np.isfinite(baselines.gsa(lr32 - 4000, hr32 - 4000, SCALE)))


class Squares(keras.Model):
    """A stand-in model whose float32 output overflows for inputs above about 1.8e19."""

    def __init__(self):
        lr = keras.Input((None, None, 2), name="lr_hsi")
        hr = keras.Input((None, None, 1), name="hr_msi")
        up = keras.layers.UpSampling2D(SCALE)(lr)
        super().__init__({"lr_hsi": lr, "hr_msi": hr}, keras.layers.Multiply()([up, up]))
        self.scale, self.hsi_bands, self.msi_bands = SCALE, 2, 1


def test_fuse_refuses_non_finite_tiles_and_outputs():
    model = Squares()
    lr, hr = np.full((2, 2, 2), 3.0, np.float32), np.ones((8, 8, 1), np.float32)
    np.testing.assert_array_equal(khf.fuse(lr, hr, model), np.full((8, 8, 2), 9.0))
    with pytest.raises(
        ValueError, match=r"gave NaN/Inf on finite inputs \(largest \|value\| 1e\+20"
    ):
        khf.fuse(lr * np.float32(1e20) / 3, hr, model)
    for arg in ("lr_hsi", "hr_msi"):
        bad = {"lr_hsi": lr.copy(), "hr_msi": hr.copy()}
        bad[arg][1, 1, 0] = np.nan
        with pytest.raises(ValueError, match=rf"`{arg}` must be finite.*with 1 NaN/Inf"):
            khf.fuse(bad["lr_hsi"], bad["hr_msi"], model)


# --- huge requests ----------------------------------------------------------------------------


class NeverRead:
    """An on-disk-like array of any shape that fails if anything reads it."""

    def __init__(self, shape):
        self.shape, self.dtype = shape, np.dtype("uint16")

    def __getitem__(self, key):
        raise AssertionError("the input was read before the memory check")

    def __setitem__(self, key, value):
        raise AssertionError("written")


def test_huge_requests_are_refused_before_allocating_with_the_estimate(tmp_path):
    folder = str(tmp_path / "tiny_preset")
    _save_tiny_preset(folder)
    big = 400_000  # 400000 x 400000 x 4 float32: 2384.19 GiB of output
    lr, hr = NeverRead((big // SCALE, big // SCALE, 4)), NeverRead((big, big, 3))
    output = f"{big * big * 4 * 4 / 2**30:.2f} GiB"
    for method in ("bicubic", tiny_model(), folder):
        with pytest.raises(MemoryError) as info:
            khf.fuse(lr, hr, method)
        message = str(info.value)
        assert f"{big} x {big} x 4 float32, {output}" in message, message
        assert "does not fit" in message and "out=" in message
    # with a target on disk the same request is accepted (it would run tile row by row)
    with pytest.raises(AssertionError, match="input was read"):
        khf.fuse(lr, hr, "bicubic", out=NeverRead((big, big, 4)))


# --- wavelengths --------------------------------------------------------------------------------


def test_wavelengths_must_have_one_entry_per_band(tmp_path):
    cube = np.ones((3, 4, 3), np.float32)
    for name in ("a.h5", "a.npz", "a.mat"):
        with pytest.raises(ValueError, match=r"one entry per band \(3\)\. Received 2"):
            raster.write_cube(tmp_path / name, cube, wavelengths=[500.0, 600.0])
        assert not (tmp_path / name).exists()
    np.savez(tmp_path / "b.npz", cube=cube, wl=np.array([500.0, 600.0]))
    with pytest.raises(ValueError, match=r"b\.npz.*`wavelengths_key` 'wl'.*\(3\)\. Received 2"):
        raster.read_cube(tmp_path / "b.npz", wavelengths_key="wl")
    with pytest.raises(KeyError, match=r"b\.npz: no wavelengths entry 'lambda'"):
        raster.read_cube(tmp_path / "b.npz", wavelengths_key="lambda")
    # found by its usual name but of another length: not band centres, read as None
    assert raster.read_cube(tmp_path / "b.npz")[1] is None
    with pytest.raises(ValueError, match=r"one entry per band \(3\)\. Received 2"):
        raster.Raster(cube, wavelengths=[500.0, 600.0])
    with pytest.raises(ValueError, match=r"`wavelengths` needs 3 entries\. Received 2"):
        raster.write_raster(tmp_path / "c.h5", cube, wavelengths=[500.0, 600.0])


@pytest.mark.parametrize("name", ["w.h5", "w.tif", "w.npz", "w.mat", "w.hdr"])
def test_non_increasing_wavelengths_are_kept_in_their_order(tmp_path, name):
    cube = np.random.default_rng(0).random((3, 2, 6)).astype(np.float32)
    raster.write_raster(tmp_path / name, cube, wavelengths=NON_MONOTONIC_NM)
    got = raster.read_raster(tmp_path / name)
    np.testing.assert_array_equal(got.array, cube)
    np.testing.assert_allclose(got.wavelengths, NON_MONOTONIC_NM, rtol=1e-6)


def test_preset_wavelengths_are_checked():
    card = presets.load_card("hssdct_indianpines_s2_x4")
    wl = np.asarray(card["hsi_wavelengths_nm"])
    assert np.any(np.diff(wl) < 0)  # AVIRIS: not increasing, and accepted in that order
    presets.check_wavelengths(card, wl + 2.0)  # within half a band spacing
    presets.check_wavelengths(card, None)  # a cube without wavelengths: nothing to check
    presets.check_wavelengths({"name": "x"}, wl)  # a card without them
    shifted = wl.copy()
    shifted[17] += 30.0
    with pytest.raises(ValueError) as info:
        presets.check_wavelengths(card, shifted)
    message = str(info.value)
    assert "'hssdct_indianpines_s2_x4'" in message and "band 17" in message
    assert f"{shifted[17]:.2f} nm" in message and f"{wl[17]:.2f} nm" in message
    assert "1 of 200 bands differ" in message
    with pytest.raises(ValueError, match=r"the 200 bands of the preset.*Received 199"):
        presets.check_wavelengths(card, wl[:-1])
    with pytest.raises(ValueError, match=r"do not match the preset .hssdct_indianpines_s2_x4"):
        presets.check_wavelengths(card, np.linspace(450, 2450, 200))  # another sensor


def test_cli_refuses_an_hsi_with_other_wavelengths_than_the_preset(tmp_path, capsys):
    wl = np.asarray(presets.load_card("hssdct_indianpines_s2_x4")["hsi_wavelengths_nm"])
    lr, hr = digital_numbers(2, 2, 200, msi_bands=4, seed=5)
    raster.write_raster(tmp_path / "lr.h5", lr, wavelengths=wl + 25.0)
    raster.write_raster(tmp_path / "hr.h5", hr)
    out = tmp_path / "fused.h5"
    argv = ["fuse", str(tmp_path / "lr.h5"), str(tmp_path / "hr.h5"), "-o", str(out), "--quiet"]
    code = main([*argv, "-m", "hssdct_indianpines_s2_x4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("khf fuse: error: The wavelengths of `LR-HSI` do not match")
    assert "200 of 200 bands differ" in err[0]
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    # a classical method takes any bands
    assert main([*argv, "-m", "bicubic"]) == 0
    assert raster.read_raster(out).shape == (8, 8, 200)


# --- corrupt rasters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["broken.tif", "broken.hdr", "broken.h5", "broken.mat", "broken.npz"]
)
def test_truncated_rasters_name_the_file(tmp_path, capsys, name):
    cube = np.random.default_rng(0).random((64, 48, 6)).astype(np.float32)
    path = tmp_path / name
    raster.write_raster(path, cube, wavelengths=NON_MONOTONIC_NM, nodata=-9999.0)
    data = path.with_suffix(".img") if name.endswith(".hdr") else path
    size = os.path.getsize(data)
    with open(data, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(ValueError, match=rf"Could not read .*{name}"):
        raster.read_raster(path)
    out = tmp_path / "fused.h5"
    code = main(["fuse", str(path), str(path), "-m", "bicubic", "-o", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and name in err[0] and "Traceback" not in err[0], err
    assert not out.exists()
