"""SFIM-HS, GSA and MTF-GLP-HS against the reference MATLAB code run under GNU Octave.

Golden fixtures (`tests/fixtures/baselines/`): `inputs.npz` is a 64 x 64 x 40 cut of Indian
Pines degraded by the training protocol at x4, `inputs_x3.npz` a 36 x 36 x 20 cut at x3 (the
odd-ratio branches; `tools/baseline_fixture_inputs.py`); `<method>.npz` and
`<method>_x3.npz` hold the outputs of the toolbox code of magamig/hif-benchmarking
under GNU Octave 7.3 (`tools/octave_fixtures_pansharp.py`, which records how in `note`).
Tolerance of the golden tests: `max|ours - octave| <= 1e-5 * max|octave|` (`assert_close`).
"""

import numpy as np
import pytest
from harness import assert_close, load_fixture
from scipy.signal import firwin

from keras_hsifusion.baselines import _estimation, _resampling
from keras_hsifusion.baselines.glp import glp
from keras_hsifusion.baselines.gsa import gsa
from keras_hsifusion.baselines.sfim import sfim

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

INPUTS = load_fixture("baselines/inputs")
LR, HR, SCALE = INPUTS["lr_hsi"], INPUTS["hr_msi"], int(INPUTS["scale"])
METHODS = {"sfim": sfim, "gsa": gsa, "glp": glp}
# The options under which each method reproduces the Octave run (see `glp`'s `fir1`).
OCTAVE_OPTIONS = {"sfim": {}, "gsa": {}, "glp": {"fir1": "octave"}}


def _psnr(est, ref):
    return 10 * np.log10(ref.max() ** 2 / np.mean((est.astype(np.float64) - ref) ** 2))


@pytest.mark.parametrize("pair", ["", "_x3"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_matches_octave_reference(name, pair):
    inputs = load_fixture(f"baselines/inputs{pair}")
    expected = load_fixture(f"baselines/{name}{pair}")
    assert "Octave" in str(expected["note"]) and "hif-benchmarking" in str(expected["note"])
    scale = int(inputs["scale"])
    out = METHODS[name](inputs["lr_hsi"], inputs["hr_msi"], scale, **OCTAVE_OPTIONS[name])
    assert out.dtype == np.float32 and out.shape == inputs["hr_hsi"].shape
    assert_close(out, expected["output"], rtol=1e-5, what=f"{name}{pair}")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_beats_bicubic_on_the_fixture(name):
    # A real fusion gain on the real cut: bicubic-like upsampling stays ~5 dB behind.
    hr_hsi = INPUTS["hr_hsi"]
    up = _resampling.resize(LR.astype(np.float64), hr_hsi.shape[:2], "bicubic")
    fused = METHODS[name](LR, HR, SCALE)
    assert _psnr(fused, hr_hsi) > _psnr(up, hr_hsi) + 4.0


def test_glp_matlab_fir1_is_the_default_and_differs_from_octave_by_little():
    # MATLAB's fir1 is the windowed ideal low-pass (scipy's firwin); Octave's `signal` package
    # designs it by frequency sampling, ~1e-3 away. The Octave fixture is matched with
    # fir1="octave"; the default (the reference as run in MATLAB) stays within 1e-3 of it.
    np.testing.assert_allclose(
        _resampling.fir1_lowpass(44, 0.25), firwin(45, 0.25, window="hamming"), atol=1e-15
    )
    gap = np.abs(_resampling.fir1_lowpass(44, 0.25, "octave") - firwin(45, 0.25)).max()
    assert 1e-4 < gap < 2e-3
    octave = load_fixture("baselines/glp")["output"]
    default = glp(LR, HR, SCALE)
    np.testing.assert_array_equal(default, glp(LR, HR, SCALE, fir1="matlab"))
    err = np.abs(default - octave).max() / np.abs(octave).max()
    assert 1e-5 < err < 1e-3


def test_imresize_known_values():
    # Octave image 2.14 / MATLAB imresize(reshape(1:16, 4, 4), [2 2], 'bilinear'): the
    # antialiased triangle with symmetric padding.
    x = np.arange(1, 17, dtype=np.float64).reshape(4, 4).T[..., None]
    out = _resampling.resize(x, (2, 2), "bilinear")[..., 0]
    np.testing.assert_allclose(out, [[4.125, 11.125], [5.875, 12.875]], atol=1e-12)
    for method in ("bilinear", "bicubic"):
        for n_in, n_out in ((16, 4), (4, 16), (9, 3)):
            m = _resampling.resize_matrix(n_in, n_out, method)
            np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(
        _resampling.resize(x, (8, 8), "nearest"), np.repeat(np.repeat(x, 2, 0), 2, 1)
    )
    # The 45-tap interpolator (MATLAB fir1) nearly interpolates: at their start offset the LR
    # samples come back alone (the windowed sinc is 0 at multiples of the ratio), times the
    # DC normalisation of fir1 (1.0011); each output phase keeps a constant within 0.4 %.
    m = _resampling.interp23tap_matrix(6, 4, 1)
    np.testing.assert_allclose(m[1::4], 1.0010787713086418 * np.eye(6), atol=1e-12)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=4e-3)
    # Gaussian down-sampling keeps constants (both kernels normalised).
    const = np.full((16, 12, 2), 0.7)
    np.testing.assert_allclose(_estimation.gaussian_down_sample(const, 4), 0.7, atol=1e-12)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_shapes_batches_and_dtypes(name):
    method = METHODS[name]
    lr, hr = LR[:8, :6, :7], HR[:32, :24]
    out = method(lr, hr, SCALE)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (32, 24, 7)
    assert np.all(np.isfinite(out))
    batch = method(np.stack([lr, lr[::-1]]), np.stack([hr, hr[::-1]]), SCALE)
    assert batch.shape == (2, 32, 24, 7) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], out)
    np.testing.assert_array_equal(batch[1], method(lr[::-1], hr[::-1], SCALE))
    # float64 input gives the same float32 output; srf and psf_fwhm are accepted, unused.
    out64 = method(lr.astype(np.float64), hr.astype(np.float64), np.int64(SCALE))
    np.testing.assert_array_equal(out64, out)
    srf = INPUTS["srf"][:7]
    np.testing.assert_array_equal(method(lr, hr, SCALE, srf=srf, psf_fwhm=3.0), out)
    # Another scale: x2 on the same HR-MSI.
    lr2 = _resampling.resize(hr.astype(np.float64), (16, 12), "bilinear") @ np.ones((4, 3))
    assert method(lr2, hr, 2).shape == (32, 24, 3)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((LR, HR, 4), {"srf": np.ones((5, 4))}, ValueError, r"`srf` must be \(C, c\) = \(40, 4\)"),
        ((LR, HR[:63], 4), {}, ValueError, r"`scale` must divide the HR-MSI size \(63, 64\)"),
        ((LR, HR, 3), {}, ValueError, r"`scale` must divide the HR-MSI size"),
        ((LR, HR, 4.0), {}, TypeError, r"`scale` must be an integer"),
        ((np.where(LR == LR.max(), np.nan, LR), HR, 4), {}, ValueError, r"`lr_hsi` must be finite"),
        ((LR, np.where(HR == HR.max(), np.inf, HR), 4), {}, ValueError, r"`hr_msi` must be finite"),
        ((LR[..., 0], HR, 4), {}, ValueError, r"`lr_hsi` must be \(h, w, C\)"),
    ],
)
def test_bad_inputs(name, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        METHODS[name](*args, **kwargs)


def test_glp_arguments():
    with pytest.raises(ValueError, match=r"`scale` must be at least 2 for `glp`. .* scale=1"):
        glp(HR, HR, 1)
    with pytest.raises(ValueError, match=r"`fir1` must be 'matlab' or 'octave'. .* fir1='scipy'"):
        glp(LR, HR, SCALE, fir1="scipy")
    with pytest.raises(TypeError, match="unexpected keyword argument 'mode'"):
        sfim(LR, HR, SCALE, mode=2)


@pytest.mark.parametrize("pair", ["inputs", "inputs_x3"])
def test_fixture_inputs_are_reproducible(pair):
    # tools/baseline_fixture_inputs.py rebuilds inputs.npz from the shipped cube and protocol.
    from tools.baseline_fixture_inputs import make_inputs  # repository root: pyproject pythonpath

    stored = load_fixture(f"baselines/{pair}")
    made = make_inputs(pair)
    assert sorted(made) == sorted(stored)
    for key, value in made.items():
        np.testing.assert_array_equal(value, stored[key], err_msg=key)
    np.testing.assert_allclose(stored["hr_hsi"] @ stored["srf"], stored["hr_msi"], atol=1e-6)
