"""HySime (`estimate_noise`, `hysime`) against the reference under Octave, and the
detail injection projected onto its subspace (`hysime_detail_injection`).

The fixture `baselines/hysime.npz` (`tools/octave_fixtures_subspace.py`) holds the outputs of
the toolbox's `estNoise.m` and `hysime.m` on the LR-HSI of `inputs.npz` and on a noisy copy
of it; the ports must match within 1e-5 relative. The fusion method itself (detail
injection + projection) has no reference code: it is checked by its properties.
"""

import numpy as np
import pytest
from harness import assert_close, load_fixture

from keras_hsifusion import baselines, metrics
from keras_hsifusion.baselines import subspace
from keras_hsifusion.baselines.subspace import (
    estimate_noise,
    hysime,
    hysime_detail_injection,
    signal_subspace,
)
from keras_hsifusion.layers import global_skip

INPUTS = load_fixture("baselines/inputs")
GOLDEN = load_fixture("baselines/hysime")
SCALE = int(INPUTS["scale"])
LR_CASES = {"clean": INPUTS["lr_hsi"], "noisy": GOLDEN["lr_hsi_noisy"]}
# HySime and the subspace method are numpy only: their tests run once (`backend_independent`);
# the two that compare with `poly_detail_injection` (a Keras layer) run on every backend.


def _bands_by_pixels(image):
    return np.ascontiguousarray(image.reshape(-1, image.shape[-1]).T.astype(np.float64))


def _psnr_sam(est):
    ref = INPUTS["hr_hsi"][None]
    return float(metrics.psnr(ref, est[None])), float(metrics.sam(ref, est[None]))


@pytest.mark.backend_independent
@pytest.mark.parametrize("case", ["clean", "noisy"])
def test_estimate_noise_and_hysime_match_octave(case):
    y = _bands_by_pixels(LR_CASES[case])
    noise, noise_corr = estimate_noise(y)
    assert_close(noise, GOLDEN[f"{case}_noise"], rtol=1e-5, what="estNoise w")
    assert_close(noise_corr, GOLDEN[f"{case}_noise_corr"], rtol=1e-5, what="estNoise Rw")
    k, basis = hysime(y, noise, noise_corr)
    assert k == int(GOLDEN[f"{case}_k"])
    assert_close(basis, GOLDEN[f"{case}_basis"], rtol=1e-5, what="hysime Ek")
    np.testing.assert_allclose(basis.T @ basis, np.eye(k), atol=1e-12)


@pytest.mark.backend_independent
def test_reference_subspace_dimensions():
    # Non-trivial on both: 10 of 40 on the clean cut, 3 with white noise at 25 dB.
    assert int(GOLDEN["clean_k"]) == 10 and int(GOLDEN["noisy_k"]) == 3


@pytest.mark.backend_independent
def test_noisy_fixture_input_is_reproducible():
    from tools.octave_fixtures_subspace import bands_by_pixels, noisy_lr_hsi

    np.testing.assert_array_equal(noisy_lr_hsi(INPUTS["lr_hsi"]), GOLDEN["lr_hsi_noisy"])
    np.testing.assert_array_equal(
        bands_by_pixels(INPUTS["lr_hsi"]), _bands_by_pixels(LR_CASES["clean"])
    )


@pytest.mark.backend_independent
def test_hysime_default_noise_correlation_and_errors():
    y = _bands_by_pixels(LR_CASES["noisy"])
    noise, _ = estimate_noise(y)
    k, basis = hysime(y, noise)  # the reference's fallback: w w' / N
    k2, basis2 = hysime(y, noise, noise @ noise.T / y.shape[1])
    assert k == k2
    np.testing.assert_array_equal(basis, basis2)
    with pytest.raises(ValueError, match=r"`noise` must have the shape of `data` \(40, 256\)"):
        hysime(y, noise[:, :10])
    with pytest.raises(ValueError, match=r"`noise_corr` must be \(L, L\) = \(40, 40\)"):
        hysime(y, noise, np.eye(3))
    with pytest.raises(ValueError, match=r"`data` must be an \(L, N\) matrix .* \(1, 5\)"):
        estimate_noise(np.ones((1, 5)))


def _low_rank_scene(side, bands=60, rank=4, sigma=0.01, seed=0):
    rng = np.random.default_rng(seed)
    wl = np.linspace(0.0, 1.0, bands)
    centres = np.linspace(0.2, 0.8, rank)
    spectra = np.stack([np.exp(-(((wl - c) / 0.2) ** 2)) for c in centres])
    clean = rng.random((side * side, rank)) @ spectra
    return (clean + sigma * rng.standard_normal(clean.shape)).reshape(side, side, bands)


@pytest.mark.backend_independent
@pytest.mark.parametrize("side", [10, 8, 5])
def test_signal_subspace_finds_the_rank_with_few_pixels(side):
    # 60 bands of rank 4 + white noise, 100, 64 and 25 pixels: the reference's mean square
    # of the residuals is biased low by (N - L + 1) / N and HySime keeps far too many
    # dimensions; corrected (and split into groups of bands below 2 L pixels) it finds 4.
    image = _low_rank_scene(side)
    basis = signal_subspace(image)
    assert basis.shape == (60, 4)
    y = _bands_by_pixels(image)
    assert hysime(y, *estimate_noise(y))[0] > 20
    # The basis spans the clean spectra: their residual after projection is tiny.
    clean = _low_rank_scene(side, sigma=0.0)
    spectra = clean.reshape(-1, 60)
    assert np.abs(spectra - spectra @ basis @ basis.T).max() < 0.02 * spectra.max()


@pytest.mark.backend_independent
def test_signal_subspace_edge_cases():
    assert signal_subspace(np.ones((8, 8, 5))).shape == (5, 1)
    assert signal_subspace(np.zeros((8, 8, 5))).shape[1] >= 1
    # Too few pixels for groups of two bands: no projection.
    np.testing.assert_array_equal(signal_subspace(np.ones((1, 1, 6))), np.eye(6))
    basis = signal_subspace(INPUTS["lr_hsi"], subspace_dim=5)
    assert basis.shape == (40, 5)
    np.testing.assert_allclose(basis.T @ basis, np.eye(5), atol=1e-12)
    with pytest.raises(ValueError, match=r"`lr_hsi` must be \(h, w, C\)"):
        signal_subspace(np.ones((2, 8, 8, 5)))


def test_base_estimate_is_poly_detail_injection_in_float64():
    assert subspace._RIDGE == global_skip._RIDGE["poly_detail_injection"]
    lr, hr = INPUTS["lr_hsi"].astype(np.float64), INPUTS["hr_msi"].astype(np.float64)
    divisor = np.abs(lr).max()
    base = subspace._poly_detail_injection(lr / divisor, hr / divisor, SCALE, None) * divisor
    # `GlobalSkip` computes in float32 (its normal equations): 9e-5 of the maximum apart.
    expected = baselines.poly_detail_injection(INPUTS["lr_hsi"], INPUTS["hr_msi"], SCALE)
    assert_close(base, expected, rtol=5e-4, what="float64 poly detail injection")
    # The full subspace is no projection.
    full = hysime_detail_injection(lr, hr, SCALE, subspace_dim=40)
    assert_close(full, base, rtol=1e-5, what="subspace_dim=C")


def test_projection_removes_noise_and_costs_little_on_clean_data():
    msi = INPUTS["hr_msi"]
    noisy, info = hysime_detail_injection(LR_CASES["noisy"], msi, SCALE, return_info=True)
    assert info == {"subspace_dim": 3}
    psnr, sam = _psnr_sam(noisy)
    psnr_poly, sam_poly = _psnr_sam(baselines.poly_detail_injection(LR_CASES["noisy"], msi, 4))
    # Measured: 35.86 dB / 2.23 deg against 32.88 dB / 3.30 deg.
    assert psnr > psnr_poly + 2.5 and sam < sam_poly - 0.8, (psnr, psnr_poly, sam, sam_poly)
    clean, info = hysime_detail_injection(LR_CASES["clean"], msi, SCALE, return_info=True)
    assert info == {"subspace_dim": 9}
    psnr, sam = _psnr_sam(clean)
    psnr_poly, sam_poly = _psnr_sam(baselines.poly_detail_injection(LR_CASES["clean"], msi, 4))
    # Measured: 38.49 dB / 1.64 deg against 38.76 dB / 1.59 deg.
    assert psnr > psnr_poly - 0.4 and sam < sam_poly + 0.1, (psnr, psnr_poly, sam, sam_poly)


@pytest.mark.backend_independent
@pytest.mark.parametrize("factor", [1000.0, 2.0**-7, 3e-4])
def test_unit_equivariance(factor):
    lr, msi = LR_CASES["noisy"], INPUTS["hr_msi"]
    out = hysime_detail_injection(lr, msi, SCALE)
    scaled = hysime_detail_injection(lr * factor, msi * factor, SCALE)
    assert_close(scaled, out * factor, rtol=1e-5, what=f"inputs x {factor}")
    info = hysime_detail_injection(lr * factor, msi * factor, SCALE, return_info=True)[1]
    assert info == {"subspace_dim": 3}


@pytest.mark.backend_independent
def test_memory_layout_does_not_matter():
    lr, msi = LR_CASES["noisy"], INPUTS["hr_msi"]
    out = hysime_detail_injection(lr, msi, SCALE)
    fortran = hysime_detail_injection(np.asfortranarray(lr), np.asfortranarray(msi), SCALE)
    np.testing.assert_array_equal(fortran, out)
    strided_lr = np.ascontiguousarray(lr.transpose(1, 0, 2)).transpose(1, 0, 2)
    strided_msi = np.ascontiguousarray(msi[:, ::-1])[:, ::-1]
    np.testing.assert_array_equal(hysime_detail_injection(strided_lr, strided_msi, SCALE), out)


@pytest.mark.backend_independent
def test_batches_and_info():
    lr, msi = LR_CASES["noisy"], INPUTS["hr_msi"]
    lr2, msi2 = LR_CASES["clean"][::-1], msi[::-1]
    batch, infos = hysime_detail_injection(
        np.stack([lr, lr2]), np.stack([msi, msi2]), SCALE, return_info=True
    )
    assert batch.shape == (2, 64, 64, 40) and batch.dtype == np.float32
    assert [i["subspace_dim"] for i in infos] == [3, 9]
    np.testing.assert_array_equal(batch[0], hysime_detail_injection(lr, msi, SCALE))
    np.testing.assert_array_equal(batch[1], hysime_detail_injection(lr2, msi2, SCALE))


@pytest.mark.backend_independent
def test_srf_unused_and_psf_fwhm_used():
    lr, msi = LR_CASES["noisy"], INPUTS["hr_msi"]
    out = hysime_detail_injection(lr, msi, SCALE)
    np.testing.assert_array_equal(hysime_detail_injection(lr, msi, SCALE, srf=INPUTS["srf"]), out)
    assert np.abs(hysime_detail_injection(lr, msi, SCALE, psf_fwhm=2.0) - out).max() > 1e-4


@pytest.mark.backend_independent
def test_option_errors():
    lr, msi = LR_CASES["clean"], INPUTS["hr_msi"]
    for bad in (0, 41, 2.0, True):
        with pytest.raises(ValueError, match=rf"`subspace_dim` .* Received: subspace_dim={bad}"):
            hysime_detail_injection(lr, msi, SCALE, subspace_dim=bad)
    with pytest.raises(ValueError, match=r"at least the PSF radius .* hr_msi of size \(4, 4\)"):
        hysime_detail_injection(np.ones((1, 1, 2)), np.ones((4, 4, 3)), 4)
