import math
import os

import numpy as np
import pytest

from keras_hsifusion import data

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent


def _g(d, fwhm):
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    return math.exp(-0.5 * (d / sigma) ** 2)


# ------------------------------------------------------------------ PSF and decimation


def test_psf_matrix_hand_computed_scale2():
    # a very narrow PSF: the LR centre lies between two HR pixels, which share the weight
    np.testing.assert_allclose(
        data.psf_matrix(4, 2, psf_fwhm=0.1), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], atol=1e-12
    )
    # FWHM 2: radius ceil(3 sigma) = 3, taps at -2.5..2.5 around the centre 2.5 of LR pixel 1
    m = data.psf_matrix(8, 2, psf_fwhm=2)
    w = [_g(d, 2) for d in (2.5, 1.5, 0.5, 0.5, 1.5, 2.5)]
    np.testing.assert_allclose(m[1, :6], np.array(w) / sum(w), rtol=1e-12)
    assert m[1, 6:].sum() == 0
    # LR pixel 0 (centre 0.5): taps -2, -1 reflect onto HR pixels 1, 0
    expect = np.zeros(8)
    for tap in range(-2, 4):
        expect[-tap - 1 if tap < 0 else tap] += _g(tap - 0.5, 2)
    np.testing.assert_allclose(m[0], expect / expect.sum(), rtol=1e-12)
    assert data.psf_radius(2, 2) == 3


def test_degrade_constant_flip_batch_and_default_fwhm():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 16, 12, 5)).astype("float32")
    srf = rng.uniform(0, 1, (5, 3))
    srf /= srf.sum(0)
    lr, msi = data.degrade(x, 4, srf)
    assert lr.shape == (2, 4, 3, 5) and msi.shape == (2, 16, 12, 3)
    assert lr.dtype == np.float32 and msi.dtype == np.float32
    np.testing.assert_allclose(msi, x @ srf, rtol=1e-5)
    # separable: the LR image is Mh X Mw^T per band, FWHM = scale by default
    mh, mw = data.psf_matrix(16, 4, 4), data.psf_matrix(12, 4, 4)
    np.testing.assert_allclose(lr[1, ..., 2], mh @ x[1, ..., 2] @ mw.T, rtol=1e-5)
    # batch == per image; flips commute with the centred PSF
    lr0, _ = data.degrade(x[0], 4, srf)
    np.testing.assert_allclose(lr0, lr[0], rtol=1e-6)
    lr_f, _ = data.degrade(x[0, ::-1, ::-1], 4, srf)
    np.testing.assert_allclose(lr_f, lr0[::-1, ::-1], rtol=1e-5, atol=1e-6)
    # a constant image stays constant
    lr_c, msi_c = data.degrade(np.full((8, 8, 5), 0.3), 2, srf)
    np.testing.assert_allclose(lr_c, 0.3, rtol=1e-6)
    np.testing.assert_allclose(msi_c, 0.3, rtol=1e-6)


def test_degrade_noise_snr_and_seed():
    x = np.random.default_rng(1).uniform(0.5, 1, (64, 64, 2)).astype("float32")
    srf = np.eye(2)
    clean_lr, clean_msi = data.degrade(x, 2, srf)
    lr, msi = data.degrade(x, 2, srf, noise_snr_db=(20, 30), seed=3)
    for noisy, clean, snr in ((lr, clean_lr, 20), (msi, clean_msi, 30)):
        for k in range(2):
            measured = 10 * np.log10(
                np.mean(clean[..., k] ** 2) / np.mean((noisy[..., k] - clean[..., k]) ** 2)
            )
            assert measured == pytest.approx(snr, abs=0.3)
    again, _ = data.degrade(x, 2, srf, noise_snr_db=(20, 30), seed=3)
    np.testing.assert_array_equal(again, lr)


def test_degrade_errors_name_arguments():
    with pytest.raises(ValueError, match="multiple of `scale`"):
        data.degrade(np.zeros((10, 8, 3)), 4, np.ones((3, 1)))
    with pytest.raises(ValueError, match="srf"):
        data.degrade(np.zeros((8, 8, 3)), 4, np.ones((4, 1)))
    with pytest.raises(ValueError, match="scale"):
        data.degrade(np.zeros((8, 8, 3)), 0, np.ones((3, 1)))


# ------------------------------------------------------------------ spectral responses


def _centroid(wl, col):
    return float(np.sum(wl * col) / np.sum(col))


def test_spectral_response_real_sensors():
    wl = np.arange(400.0, 2501.0, 10.0)
    expected = {  # published band centres (nm) of the sensors, for a sanity check
        "sentinel2a-10m": [492.4, 559.8, 664.6, 832.8],
        "landsat8-oli": [443, 482, 561.4, 654.6, 864.7, 1608.9, 2200.7],
    }
    for sensor, centres in expected.items():
        srf = data.spectral_response(sensor, wl)
        assert srf.shape == (wl.size, len(centres))
        np.testing.assert_allclose(srf.sum(0), 1.0, rtol=1e-12)
        got = [_centroid(wl, srf[:, j]) for j in range(srf.shape[1])]
        np.testing.assert_allclose(got, centres, atol=12)
    assert data.spectral_response("sentinel2a", wl).shape == (wl.size, 11)
    assert set(data.list_sensors()) >= {
        "sentinel2a-10m",
        "sentinel2a",
        "landsat8-oli",
        "nikon5100-rgb",
        "canon5dmk2-rgb",
        "cie1931-xyz",
    }
    vis = np.arange(400.0, 701.0, 5.0)
    y = data.spectral_response("cie1931-xyz", vis)[:, 1]
    assert vis[np.argmax(y)] == pytest.approx(555, abs=5)  # photopic peak
    for cam in ("nikon5100-rgb", "canon5dmk2-rgb"):
        rgb = data.spectral_response(cam, vis)
        peaks = vis[np.argmax(rgb, axis=0)]
        assert peaks[0] > peaks[1] > peaks[2]  # R, G, B


def test_spectral_response_band_integration_and_errors():
    wl = np.arange(400.0, 1001.0, 10.0)
    centres = data.spectral_response("sentinel2a-10m", wl)
    narrow = data.spectral_response("sentinel2a-10m", wl, fwhm=0.5)
    np.testing.assert_allclose(narrow, centres, atol=2e-3)
    wide = data.spectral_response("sentinel2a-10m", wl, fwhm=10.0)
    np.testing.assert_allclose(wide.sum(0), 1.0)
    with pytest.raises(ValueError, match="sensor"):
        data.spectral_response("sentinel9", wl)
    with pytest.raises(ValueError, match="micrometres"):
        data.spectral_response("sentinel2a-10m", wl / 1000)
    with pytest.raises(ValueError, match="no response"):
        data.spectral_response("sentinel2a-10m", np.arange(1500.0, 2000.0, 10.0))
    with pytest.warns(UserWarning, match="B8"):
        data.spectral_response("sentinel2a-10m", np.arange(400.0, 850.0, 10.0))


# ------------------------------------------------------------------ Indian Pines


def test_indian_pines_bands_match_the_aviris_calibration_file():
    spectral = pytest.importorskip("spectral")
    from spectral.io.aviris import read_aviris_bands

    spc = os.path.join(os.path.dirname(spectral.__file__), "tests", "data", "92AV3C.spc")
    info = read_aviris_bands(spc)
    drop = list(range(104, 109)) + list(range(150, 164)) + [220]  # 1-based
    keep = [i for i in range(220) if i + 1 not in drop]
    centres, fwhm = data.indian_pines_bands()
    np.testing.assert_allclose(centres, np.asarray(info.centers)[keep], rtol=1e-7)
    np.testing.assert_allclose(fwhm, np.asarray(info.bandwidths)[keep], rtol=1e-7)


def test_indian_pines_cube_and_protocol_pair():
    pytest.importorskip("tensorly")
    cube, wl = data.indian_pines()
    assert cube.shape == (145, 145, 200) and cube.dtype == np.float32
    assert cube.max() == 1.0 and cube.min() > 0
    assert wl.shape == (200,)
    assert wl[0] == pytest.approx(400.02, abs=0.01)
    assert wl[102] == pytest.approx(1352.68, abs=0.01)  # AVIRIS band 103
    assert wl[103] == pytest.approx(1412.39, abs=0.01)  # band 109: 104-108 removed
    assert wl[-1] == pytest.approx(2489.11, abs=0.01)  # band 219: 220 removed
    srf = data.spectral_response("sentinel2a-10m", wl)
    lr, msi = data.degrade(cube[:144, :144], 4, srf)
    assert lr.shape == (36, 36, 200) and msi.shape == (144, 144, 4)
