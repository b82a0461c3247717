"""Property tests (hypothesis): the metrics' symmetries, bounds and identities, their defined
behaviour on constant and all-zero bands, and the invariants of the degradation (scale,
PSF). Examples are drawn from a shape and a seed, so each test runs in well under a
second per example; failures shrink to the smallest shape and seed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_hsifusion import metrics
from keras_hsifusion.data import degrade, psf_matrix, psf_radius, spatial_degrade

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)
SYMMETRIC = ["rmse", "sam", "cc", "uiqi"]
# Metric -> its range and its value for est == ref.
BOUNDS = {
    "rmse": ((0.0, np.inf), 0.0),
    "sam": ((0.0, 180.0), 0.0),
    "ergas": ((0.0, np.inf), 0.0),
    "cc": ((-1.0, 1.0), 1.0),
    "uiqi": ((-1.0, 1.0), 1.0),
    "ssim": ((-1.0, 1.0), 1.0),
}


def _call(name, ref, est):
    fn = getattr(metrics, name)
    return fn(ref, est, 4) if name == "ergas" else fn(ref, est)


@st.composite
def pairs(draw, min_side=2, max_side=9, signed=False):
    """A reference and an estimate `(H, W, C)` in [0, 1) (or [-1, 1)) with varying bands."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    c = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low = -1.0 if signed else 0.0
    ref = rng.uniform(low, 1.0, (h, w, c))
    est = rng.uniform(low, 1.0, (h, w, c))
    # half of the examples: the estimate is a noisy copy, the realistic case
    if draw(st.booleans()):
        est = ref + draw(st.floats(0.0, 0.5)) * (est - ref)
    ref[0, 0] += 1.0  # no band is constant
    return ref, est


@pytest.mark.parametrize("name", sorted(BOUNDS))
@SETTINGS
@given(data=pairs(min_side=11, max_side=13))
def test_metric_bounds_and_identity(name, data):
    ref, est = data
    (low, high), identity = BOUNDS[name]
    value = _call(name, ref, est)
    assert np.isfinite(value) and low - 1e-9 <= value <= high + 1e-9, value
    # arccos is steep at 1: SAM of identical spectra is 0 to about 1e-6 degrees
    assert _call(name, ref, ref) == pytest.approx(identity, abs=1e-5 if name == "sam" else 1e-9)


@pytest.mark.parametrize("name", SYMMETRIC)
@SETTINGS
@given(data=pairs())
def test_symmetric_metrics(name, data):
    ref, est = data
    est[0, 0] += 1.0  # cc: no constant band on either side
    assert _call(name, ref, est) == pytest.approx(_call(name, est, ref), rel=1e-9, abs=1e-12)


@SETTINGS
@given(data=pairs(min_side=11, max_side=12))
def test_ssim_is_symmetric_for_a_given_data_range(data):
    # Only the default data_range (of `ref`) breaks the symmetry.
    ref, est = data
    a = metrics.ssim(ref, est, data_range=1.0)
    assert a == pytest.approx(metrics.ssim(est, ref, data_range=1.0), rel=1e-9, abs=1e-12)


@SETTINGS
@given(data=pairs(), gain=st.floats(0.01, 100.0), offset=st.floats(-1.0, 1.0))
def test_scale_invariances(data, gain, offset):
    ref, est = data
    # SAM: the angle ignores the length of each spectrum.
    assert metrics.sam(ref, gain * ref) == pytest.approx(0.0, abs=1e-4)
    assert metrics.sam(ref, est) == pytest.approx(metrics.sam(gain * ref, est), abs=1e-5)
    # ERGAS: relative errors; the ratio divides it.
    e = metrics.ergas(ref, est, 1)
    assert metrics.ergas(gain * ref, gain * est, 1) == pytest.approx(e, rel=1e-9)
    assert metrics.ergas(ref, est, 4) == pytest.approx(e / 4, rel=1e-12)
    # PSNR: unchanged when both images scale; RMSE scales with them.
    assert metrics.psnr(gain * ref, gain * est) == pytest.approx(metrics.psnr(ref, est))
    assert metrics.rmse(gain * ref, gain * est) == pytest.approx(gain * metrics.rmse(ref, est))
    # CC: any positive affine map of the estimate is a perfect correlation, a negative one
    # a perfect anti-correlation.
    assert metrics.cc(ref, gain * ref + offset) == pytest.approx(1.0, abs=1e-9)
    assert metrics.cc(ref, -gain * ref + offset) == pytest.approx(-1.0, abs=1e-9)


@SETTINGS
@given(data=pairs(), shift=st.floats(1e-3, 2.0), sign=st.sampled_from([-1, 1]))
def test_rmse_and_psnr_of_an_offset(data, shift, sign):
    ref, _ = data
    assert metrics.rmse(ref, ref + sign * shift) == pytest.approx(shift, rel=1e-9)
    expected = 10 * np.log10(ref.max() ** 2 / shift**2)
    assert metrics.psnr(ref, ref + sign * shift) == pytest.approx(expected)


@SETTINGS
@given(data=pairs(), t=st.floats(0.1, 0.9))
def test_closer_estimates_score_better(data, t):
    ref, est = data
    if np.allclose(ref, est):
        return
    closer = ref + t * (est - ref)
    assert metrics.rmse(ref, closer) < metrics.rmse(ref, est)
    assert metrics.psnr(ref, closer) > metrics.psnr(ref, est)
    assert metrics.ergas(ref, closer, 4) < metrics.ergas(ref, est, 4)


@SETTINGS
@given(data=pairs(), batch=st.integers(1, 3))
def test_batches_are_the_mean_of_images(data, batch):
    ref, est = data
    refs = np.stack([ref * (k + 1) for k in range(batch)])
    ests = np.stack([est + k for k in range(batch)])
    for name in ("rmse", "psnr", "sam", "ergas", "uiqi"):
        per_image = [_call(name, r, e) for r, e in zip(refs, ests)]
        assert _call(name, refs, ests) == pytest.approx(np.mean(per_image), rel=1e-12), name


# ------------------------------------------------------------------ degenerate bands


@SETTINGS
@given(data=pairs(), band=st.integers(0, 4), value=st.sampled_from([0.0, 0.25, 1.0]))
def test_constant_and_zero_bands_never_give_a_silent_nan(data, band, value):
    ref, est = data
    band = band % ref.shape[-1]
    flat = ref.copy()
    flat[..., band] = value
    for name in ("rmse", "sam", "uiqi"):
        assert np.isfinite(_call(name, flat, est)), name
        assert np.isfinite(_call(name, est, flat)), name
    # PSNR: finite while the whole reference has a positive peak, else refused.
    if flat.max() > 0:
        assert np.isfinite(metrics.psnr(flat, est))
    else:
        with pytest.raises(ValueError, match="positive maximum"):
            metrics.psnr(flat, est)
    # CC: a constant reference band is refused, a constant estimate band counts 0.
    with pytest.raises(ValueError, match=rf"`cc` is undefined .* bands \[{band}\]"):
        metrics.cc(flat, est)
    varying = est.copy()
    varying[0, 0] += 1.0
    per_band = [metrics.cc(varying[..., [k]], flat[..., [k]]) for k in range(ref.shape[-1])]
    assert per_band[band] == 0.0 and metrics.cc(varying, flat) == pytest.approx(np.mean(per_band))
    # ERGAS: a band of mean 0 is refused by name; any other constant band is fine.
    if value == 0.0:
        with pytest.raises(ValueError, match=rf"bands \[{band}\] of {ref.shape[-1]} have mean 0"):
            metrics.ergas(flat, est, 4)
    else:
        assert np.isfinite(metrics.ergas(flat, est, 4))


def test_all_zero_images():
    zero, one = np.zeros((12, 12, 3)), np.ones((12, 12, 3))
    assert metrics.rmse(zero, zero) == 0.0 and metrics.psnr(zero, zero) == np.inf
    assert metrics.sam(zero, zero) == 0.0 and metrics.sam(zero, one) == 0.0  # all skipped
    assert metrics.uiqi(zero, zero) == 1.0
    with pytest.raises(ValueError, match=r"positive maximum .* max\(ref\)=0.0"):
        metrics.psnr(zero, one)
    with pytest.raises(ValueError, match=r"bands \[0, 1, 2\] of 3 have mean 0"):
        metrics.ergas(zero, one, 4)
    with pytest.raises(ValueError, match="explicit `data_range`"):
        metrics.ssim(zero, one)
    assert metrics.ssim(zero, zero, data_range=1.0) == pytest.approx(1.0)
    assert np.isfinite(metrics.ssim(one, zero, data_range=1.0))
    with pytest.raises(ValueError, match=r"data_range=0"):
        metrics.ssim(one, one, data_range=0)
    with pytest.raises(ValueError, match=r"non-empty .* ref.shape=\(0, 4, 3\)"):
        metrics.rmse(np.zeros((0, 4, 3)), np.zeros((0, 4, 3)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # from the NaN/Inf on purpose
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_propagate(bad):
    rng = np.random.default_rng(0)
    ref, est = rng.random((12, 12, 3)) + 0.1, rng.random((12, 12, 3)) + 0.1
    est[3, 4, 1] = bad
    for name in ("rmse", "psnr", "sam", "ergas", "cc", "ssim"):
        assert not np.isfinite(_call(name, ref, est)), name


# ------------------------------------------------------------------ degradation


@st.composite
def scenes(draw, batch=False):
    scale = draw(st.integers(1, 4))
    fwhm = draw(st.one_of(st.none(), st.floats(0.5, 6.0)))
    radius = psf_radius(scale, fwhm)
    # every side a multiple of the scale and wider than the PSF (reflection needs it)
    lo = max(1, -(-(radius + 1) // scale))
    h = scale * draw(st.integers(lo, lo + 3))
    w = scale * draw(st.integers(lo, lo + 3))
    c = draw(st.integers(1, 3))
    shape = ((draw(st.integers(1, 2)),) if batch else ()) + (h, w, c)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.random(shape), scale, fwhm


@SETTINGS
@given(scene=scenes(), value=st.floats(-10.0, 10.0))
def test_degradation_sizes_and_constant_images(scene, value):
    x, scale, fwhm = scene
    h, w, c = x.shape
    out = spatial_degrade(x, scale, fwhm)
    assert out.shape == (h // scale, w // scale, c) and out.dtype == np.float32
    flat = spatial_degrade(np.full_like(x, value), scale, fwhm)
    np.testing.assert_allclose(flat, value, rtol=1e-6, atol=1e-6)
    for size in (h, w):
        m = psf_matrix(size, scale, fwhm)
        assert m.shape == (size // scale, size) and np.all(m >= 0)
        np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-12)


@SETTINGS
@given(scene=scenes(), a=st.floats(-3.0, 3.0), b=st.floats(-3.0, 3.0))
def test_degradation_is_linear_and_band_independent(scene, a, b):
    x, scale, fwhm = scene
    y = np.roll(x, 1, axis=-1) ** 2
    lhs = spatial_degrade(a * x + b * y, scale, fwhm)
    rhs = a * spatial_degrade(x, scale, fwhm) + b * spatial_degrade(y, scale, fwhm)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-5 * (abs(a) + abs(b) + 1))
    each = [spatial_degrade(x[..., [k]], scale, fwhm)[..., 0] for k in range(x.shape[-1])]
    np.testing.assert_allclose(spatial_degrade(x, scale, fwhm), np.stack(each, -1), rtol=1e-6)


@SETTINGS
@given(scene=scenes())
def test_degradation_is_separable_and_commutes_with_flips(scene):
    x, scale, fwhm = scene
    h, w, _ = x.shape
    out = spatial_degrade(x, scale, fwhm)
    # The PSF is centred: flipping the HR image flips the LR image (even scales too).
    for axis in (0, 1):
        np.testing.assert_allclose(
            spatial_degrade(np.flip(x, axis), scale, fwhm), np.flip(out, axis), atol=1e-6
        )
    # Separable: a rank-1 band u v^T degrades to (Mh u)(Mw v)^T.
    u, v = x[:, 0, 0], x[0, :, 0]
    rank1 = np.outer(u, v)[..., None]
    expected = np.outer(psf_matrix(h, scale, fwhm) @ u, psf_matrix(w, scale, fwhm) @ v)
    np.testing.assert_allclose(spatial_degrade(rank1, scale, fwhm)[..., 0], expected, atol=1e-6)


@SETTINGS
@given(scene=scenes(batch=True), bands=st.integers(1, 3), seed=st.integers(0, 100))
def test_degrade_batches_spectral_response_and_noise(scene, bands, seed):
    x, scale, fwhm = scene
    srf = np.random.default_rng(seed).random((x.shape[-1], bands))
    lr, msi = degrade(x, scale, srf, psf_fwhm=fwhm)
    assert lr.shape == (x.shape[0], x.shape[1] // scale, x.shape[2] // scale, x.shape[3])
    assert msi.shape == x.shape[:3] + (bands,)
    for k in range(x.shape[0]):  # a batch is its images, one by one
        one_lr, one_msi = degrade(x[k], scale, srf, psf_fwhm=fwhm)
        np.testing.assert_allclose(lr[k], one_lr, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(msi[k], one_msi, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(msi, x @ srf, rtol=1e-5, atol=1e-6)
    # Noise is reproducible with a seed and changes nothing else.
    a = degrade(x, scale, srf, psf_fwhm=fwhm, noise_snr_db=30, seed=seed)
    b = degrade(x, scale, srf, psf_fwhm=fwhm, noise_snr_db=30, seed=seed)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    only_msi = degrade(x, scale, srf, psf_fwhm=fwhm, noise_snr_db=(None, 30), seed=seed)
    np.testing.assert_array_equal(only_msi[0], lr)


@SETTINGS
@given(scale=st.integers(2, 5), extra=st.integers(1, 4))
def test_sizes_not_a_multiple_of_the_scale_are_refused(scale, extra):
    size = scale * 6 + (extra % scale or 1)
    with pytest.raises(ValueError, match=rf"multiple of `scale`. Received: size={size}"):
        spatial_degrade(np.zeros((size, scale * 6, 2)), scale)
