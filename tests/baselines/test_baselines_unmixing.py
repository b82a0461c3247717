"""CNMF, HySure and FUSE: golden fixtures of the reference MATLAB code run under Octave.

The fixtures (`tools/octave_fixtures_unmixing.py`) hold the output of the toolbox wrappers
of magamig/hif-benchmarking on `inputs.npz` and, for the methods that draw random numbers
(VCA in CNMF and HySure), the uniform draws the reference consumed; the port is fed the same
draws (`vca_draws`) and must match within 1e-5 relative.
"""

import numpy as np
import pytest
from harness import assert_close, load_fixture

from keras_hsifusion import metrics
from keras_hsifusion.baselines import _estimation, _unmixing
from keras_hsifusion.baselines.cnmf import cnmf
from keras_hsifusion.baselines.fuse_wei import fuse_wei
from keras_hsifusion.baselines.hysure import hysure

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

INPUTS = load_fixture("baselines/inputs")
SCALE = int(INPUTS["scale"])

# Small options that keep the shape/error tests fast.
FAST = {
    cnmf: {"inner_iterations": 10},
    hysure: {"subspace_dim": 5, "iterations": 3},
    fuse_wei: {},
}


def _psnr_sam(est):
    ref = INPUTS["hr_hsi"][None]
    return float(metrics.psnr(ref, est[None])), float(metrics.sam(ref, est[None]))


@pytest.mark.parametrize("method", [cnmf, hysure, fuse_wei], ids=lambda m: m.__name__)
def test_matches_octave_reference(method):
    golden = load_fixture(f"baselines/{method.__name__}")
    # CNMF: the reference's reflectance unit (our default divides by max|lr_hsi|, see
    # docs/differences.md); the other two have no unit option
    options = {"unit": 1.0} if method is cnmf else {}
    if "vca_draws" in golden:
        options["vca_draws"] = golden["vca_draws"]
    out = method(INPUTS["lr_hsi"], INPUTS["hr_msi"], SCALE, **options)
    assert out.dtype == np.float32 and out.shape == INPUTS["hr_hsi"].shape
    assert_close(out, golden["output"], rtol=1e-5, what=method.__name__)
    # And the reference is a real fusion result: far better than the LR-HSI alone.
    psnr, sam = _psnr_sam(out)
    assert psnr > 37.0 and sam < 2.0, (psnr, sam)


def test_reference_draws_are_those_the_methods_consume():
    # CNMF extracted 30 endmembers (30 draws of 30); HySure ran VCA 20 times with p = 30.
    assert int(load_fixture("baselines/cnmf")["draws_used"]) == 30 * 30
    assert int(load_fixture("baselines/hysure")["draws_used"]) == 20 * 30 * 30
    info = cnmf(INPUTS["lr_hsi"], INPUTS["hr_msi"], SCALE, inner_iterations=2, return_info=True)[1]
    assert info["n_endmembers"] == 30


def _small_pair(seed=0, bands=16, h=8):
    rng = np.random.default_rng(seed)
    lr = rng.random((h, h, bands)).astype(np.float32)
    msi = rng.random((4 * h, 4 * h, 4)).astype(np.float32)
    return lr, msi


@pytest.mark.parametrize("method", [cnmf, hysure, fuse_wei], ids=lambda m: m.__name__)
def test_shapes_dtype_and_batches(method):
    lr, msi = _small_pair()
    lr2, msi2 = _small_pair(seed=1)
    single = method(lr, msi, 4, **FAST[method])
    assert single.shape == (32, 32, 16) and single.dtype == np.float32
    assert np.all(np.isfinite(single))
    batch = method(np.stack([lr, lr2]), np.stack([msi, msi2]), 4, **FAST[method])
    assert batch.shape == (2, 32, 32, 16) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], single, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batch[1], method(lr2, msi2, 4, **FAST[method]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", [cnmf, hysure], ids=lambda m: m.__name__)
def test_seed_makes_runs_reproducible(method):
    lr, msi = _small_pair()
    a = method(lr, msi, 4, seed=3, **FAST[method])
    np.testing.assert_array_equal(a, method(lr, msi, 4, seed=3, **FAST[method]))
    assert np.max(np.abs(a - method(lr, msi, 4, seed=4, **FAST[method]))) > 1e-6


@pytest.mark.parametrize("method", [cnmf, hysure, fuse_wei], ids=lambda m: m.__name__)
def test_given_srf_is_used(method):
    options = {"inner_iterations": 50} if method is cnmf else {}
    if method is hysure:
        options = {"iterations": 50}
    est = method(INPUTS["lr_hsi"], INPUTS["hr_msi"], SCALE, **options)
    given = method(INPUTS["lr_hsi"], INPUTS["hr_msi"], SCALE, srf=INPUTS["srf"], **options)
    assert np.max(np.abs(est - given)) > 1e-4
    psnr, sam = _psnr_sam(given)
    assert psnr > 36.0 and sam < 2.2, (psnr, sam)


@pytest.mark.parametrize("method", [cnmf, hysure, fuse_wei], ids=lambda m: m.__name__)
def test_bad_inputs(method):
    lr, msi = _small_pair()
    with pytest.raises(ValueError, match="srf"):
        method(lr, msi, 4, srf=np.ones((15, 4)), **FAST[method])
    with pytest.raises(ValueError, match="scale"):
        method(lr, msi, 3, **FAST[method])
    bad = lr.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="lr_hsi"):
        method(bad, msi, 4, **FAST[method])
    with pytest.raises(ValueError, match="hr_msi"):
        method(lr, msi[:, :, :, None], 4, **FAST[method])
    with pytest.raises(TypeError, match="scale"):
        method(lr, msi, 4.0, **FAST[method])


def test_option_errors():
    lr, msi = _small_pair()
    with pytest.raises(ValueError, match="subspace_dim"):
        fuse_wei(lr, msi, 4, subspace_dim=17)
    with pytest.raises(ValueError, match="subspace_dim"):
        hysure(lr, msi, 4, subspace_dim=17)
    with pytest.raises(ValueError, match="n_endmembers"):
        cnmf(lr, msi, 4, n_endmembers=1)
    with pytest.raises(ValueError, match="inner_iterations"):
        cnmf(lr, msi, 4, inner_iterations=0)
    with pytest.raises(ValueError, match="vca_draws"):
        cnmf(lr, msi, 4, vca_draws=np.zeros(10))
    with pytest.raises(ValueError, match="hr_msi"):
        hysure(lr[:2, :2], msi[:8, :8], 4, subspace_dim=5)
    with pytest.raises(ValueError, match="lr_hsi"):
        hysure(lr[:4, :4], msi[:8, :8], 2, subspace_dim=5)
    with pytest.raises(ValueError, match="lr_hsi"):
        fuse_wei(lr[:1, :1], msi[:4, :4], 4)


def test_estimate_srf_recovers_weights_and_offset():
    rng = np.random.default_rng(0)
    hr = rng.random((32, 32, 12))
    weights = np.zeros((3, 12))
    weights[0, :4], weights[1, 4:8], weights[2, 7:] = 0.25, 0.3, 0.2
    offset = np.array([0.05, -0.02, 0.1])
    msi = hr @ weights.T + offset
    lr = _estimation.gaussian_down_sample(hr, 4)  # linear: degrades msi consistently
    got, got_offset, error = _estimation.estimate_srf(lr, msi, 4)
    np.testing.assert_allclose(got, weights, atol=1e-9)
    np.testing.assert_allclose(got_offset, offset, atol=1e-9)
    assert np.all(error < 1e-9)


def test_gaussian_down_sample_and_imresize_keep_constants():
    image = np.full((16, 12, 2), 0.7)
    np.testing.assert_allclose(_estimation.gaussian_down_sample(image, 4), 0.7, rtol=1e-12)
    np.testing.assert_allclose(_estimation.imresize_cubic_up(image[:4, :3], 4), 0.7, rtol=1e-12)
    # Pixel-centre grid: HR pixel o sits at LR coordinate o / 2 - 0.25; cubic keeps ramps.
    ramp = np.arange(6.0)[:, None] * np.ones((1, 6))
    up = _estimation.imresize_cubic_up(ramp, 2)
    np.testing.assert_allclose(up[4:8, 0], np.arange(4, 8) / 2 - 0.25, atol=1e-12)


@pytest.mark.parametrize("vca", [_unmixing.vca_yokoya, _unmixing.vca_hysure])
def test_vca_finds_pure_pixels(vca):
    rng = np.random.default_rng(0)
    endmembers = rng.random((20, 4)) + 0.1
    abundances = rng.dirichlet(np.ones(4), size=300).T
    abundances[:, :4] = np.eye(4)  # the pure pixels
    data = endmembers @ abundances
    found = vca(data, 4, rng.random(16))
    for column in endmembers.T:
        assert np.min(np.max(np.abs(found - column[:, None]), axis=0)) < 1e-9


def test_virtual_dimensionality_counts_sources():
    rng = np.random.default_rng(0)
    data = rng.random((30, 5)) @ rng.dirichlet(np.ones(5), size=4000).T
    data += 1e-3 * rng.standard_normal(data.shape)
    assert 3 <= _unmixing.vd(data, 5e-2) <= 6


def test_leading_eigenvectors_where_octave_svds_gives_up():
    # Octave 7.3's svds (eigs) returns only 27 of the 30 singular vectors VCA asks for on the
    # fixture's LR-HSI correlation (eigenvalues from 4.3 down to 3e-8), and the reference
    # code then stops on nonconformant arguments; the port (and the fixtures' svds shim)
    # uses a dense eigendecomposition. docs/baselines_unmixing.md
    pixels = INPUTS["lr_hsi"].reshape(-1, INPUTS["lr_hsi"].shape[-1]).T.astype(np.float64)
    corr = pixels @ pixels.T / pixels.shape[1]
    vecs = _unmixing.leading_eigenvectors(corr, 30)
    assert vecs.shape == (40, 30)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(30), atol=1e-12)
    vals = np.sum(vecs * (corr @ vecs), axis=0)
    assert np.all(np.diff(vals) <= 0) and vals[-1] < 1e-7 * vals[0]
    np.testing.assert_allclose(corr @ vecs, vecs * vals, atol=1e-12 * vals[0])
    # Sign convention: the largest-magnitude entry of every vector is positive.
    assert np.all(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(30)] > 0)
