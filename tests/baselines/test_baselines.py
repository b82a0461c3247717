"""keras_hsifusion.baselines: one signature, numpy float32 out, known answers, clear errors."""

import keras
import numpy as np
import pytest
from harness import assert_close

from keras_hsifusion import baselines
from keras_hsifusion.data import spatial_degrade
from keras_hsifusion.ops import interpolate

RNG = np.random.default_rng(0)
LR = RNG.random((8, 6, 5)).astype(np.float32)  # (h, w, C)
HR = RNG.random((32, 24, 3)).astype(np.float32)  # (4h, 4w, c)
NAMES = sorted(baselines.METHODS)


def test_registry():
    assert NAMES == [
        "bicubic",
        "cnmf",
        "detail_injection",
        "fuse_wei",
        "glp",
        "gsa",
        "hysime_detail_injection",
        "hysure",
        "poly_detail_injection",
        "sfim",
    ]
    for name in NAMES:
        assert baselines.get_method(name) is baselines.METHODS[name]
    assert baselines.get_method("bicubic") is baselines.bicubic
    with pytest.raises(ValueError, match=r"Unknown baseline. .* Received: 'gs'"):
        baselines.get_method("gs")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtype(name):
    method = baselines.get_method(name)
    out = method(LR, HR, 4)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (32, 24, 5)
    batched = method(np.stack([LR, LR[::-1]]), np.stack([HR, HR[::-1]]), 4)
    assert isinstance(batched, np.ndarray) and batched.dtype == np.float32
    assert batched.shape == (2, 32, 24, 5)
    assert_close(batched[0], out, rtol=1e-5)
    # float64 and int inputs and the unused srf give float32 out; psf_fwhm is accepted.
    out64 = method(LR.astype(np.float64), HR.astype(np.float64), np.int64(4))
    assert out64.dtype == np.float32
    assert_close(out64, out, rtol=1e-5)
    assert method(LR, HR, 4, srf=np.full((5, 3), 0.2)).dtype == np.float32
    assert method((LR * 100).astype(np.int32), (HR * 100).astype(np.int32), 4).dtype == np.float32
    assert method(LR, HR, 4, psf_fwhm=3.5).shape == (32, 24, 5)


def test_bicubic_is_ops_interpolate():
    expected = keras.ops.convert_to_numpy(interpolate(LR[None], scale_factor=4, mode="bicubic"))
    np.testing.assert_array_equal(baselines.bicubic(LR, HR, 4), expected[0])
    # The HR-MSI and the sensor arguments do not change it.
    np.testing.assert_array_equal(
        baselines.bicubic(LR, HR * 0, 4, srf=np.ones((5, 3)), psf_fwhm=9.0), expected[0]
    )


def test_detail_injection_recovers_an_hsi_in_the_span_of_the_msi():
    # HR-HSI = HR-MSI @ A exactly, LR-HSI its PSF-degraded version (the same Gaussian PSF as
    # the method's): the regression finds A and the injected detail restores every pixel.
    rng = np.random.default_rng(1)
    scale, fwhm = 4, 3.0
    msi = rng.random((48, 40, 4)).astype(np.float32)
    mixing = rng.normal(size=(4, 7)) * 0.3
    hsi = (msi.astype(np.float64) @ mixing + 0.5).astype(np.float32)
    lr = spatial_degrade(hsi, scale, fwhm)
    fused = baselines.detail_injection(lr, msi, scale, psf_fwhm=fwhm)
    assert_close(fused, hsi, rtol=1e-3, what="detail injection")
    up = baselines.bicubic(lr, msi, scale)
    assert np.abs(up - hsi).max() > 30 * np.abs(fused - hsi).max()
    # `psf_fwhm` is used: the default PSF (FWHM = scale) is the wrong one here.
    wrong = baselines.detail_injection(lr, msi, scale)
    assert np.abs(wrong - hsi).max() > 10 * np.abs(fused - hsi).max()
    # Default FWHM = scale: the same exactness with a pair simulated at the default PSF.
    lr_default = spatial_degrade(hsi, scale)
    assert_close(baselines.detail_injection(lr_default, msi, scale), hsi, rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((LR[0], HR, 4), {}, ValueError, r"`lr_hsi` must be \(h, w, C\) .* shape \(6, 5\)"),
        ((LR, HR[None], 4), {}, ValueError, r"`hr_msi` must have the rank of `lr_hsi` \(3\)"),
        ((LR[None], np.stack([HR, HR]), 4), {}, ValueError, r"same number of images"),
        ((LR, HR[:30], 4), {}, ValueError, r"`scale` must divide .* \(30, 24\). .* scale=4"),
        ((LR, HR, 2), {}, ValueError, r"`hr_msi` must be `scale` \(2\) times .* \(32, 24\)"),
        ((LR, HR, 4.0), {}, TypeError, r"`scale` must be an integer. Received: scale=4.0"),
        ((LR, HR, True), {}, TypeError, r"Received: scale=True"),
        ((LR, HR, 0), {}, ValueError, r"`scale` must be >= 1. Received: scale=0"),
        ((LR.astype(str), HR, 4), {}, TypeError, r"`lr_hsi` must be a real numeric array"),
        ((LR, HR.astype(complex), 4), {}, TypeError, r"`hr_msi` .* dtype complex128"),
        ((LR, HR, 4), {"psf_fwhm": -1.0}, ValueError, r"Received: psf_fwhm=-1.0"),
        ((LR, HR, 4), {"psf_fwhm": "4"}, TypeError, r"Received: psf_fwhm='4'"),
        ((LR, HR, 4), {"srf": np.ones((3, 5))}, ValueError, r"`srf` must be \(C, c\) = \(5, 3\)"),
        ((LR[:0], HR[:0], 4), {}, ValueError, r"Empty image"),
    ],
)
def test_errors(name, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        baselines.get_method(name)(*args, **kwargs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("arg", ["lr_hsi", "hr_msi"])
def test_non_finite_inputs(name, arg):
    lr, hr = LR.copy(), HR.copy()
    bad = lr if arg == "lr_hsi" else hr
    bad[1, 2, 0], bad[3, 1, 2] = np.nan, np.inf
    with pytest.raises(ValueError, match=rf"`{arg}` must be finite. .* 2 NaN/Inf value\(s\)"):
        baselines.get_method(name)(lr, hr, 4)


def test_detail_injection_needs_the_psf_support():
    with pytest.raises(ValueError, match=r"at least the PSF radius .* hr_msi of size \(4, 4\)"):
        baselines.detail_injection(np.ones((1, 1, 2)), np.ones((4, 4, 3)), 4)
